/*
 * Fixed-rate latency runs: requests sent on a steady schedule (open loop) well below
 * saturation, each timed to the microsecond. That is the latency users feel.
 *
 * Not autocannon's `overallRate`: it lets every connection send its per-second quota
 * back to back at the start of each second (a burst at full speed, then silence), and its
 * coordinated-omission correction with a 1 ms expected interval adds synthetic samples
 * for every response slower than 1 ms (at 1,000 req/s against a trivial server it reported
 * p99 56 ms from 9,750 "samples" of 3,061 requests). Its histogram is also whole
 * milliseconds only.
 */
import { Agent, request } from 'node:http';
import { type LatencySummary, Samples } from './latency.js';
import { cpuMeter, type CpuReport, type LoadTarget } from './load.js';

export interface FixedRateOptions {
  /** Requests per second, spread evenly (a few per millisecond tick). */
  rate: number;
  /** Seconds, including `settle`. */
  duration: number;
  /** Seconds at the start whose requests are sent but not measured (connections opening). */
  settle: number;
  others?: Record<string, readonly number[]>;
}

export interface FixedRateResult {
  rate: number;
  /** Responses per second over the measured part; below `rate` means the target saturated. */
  achievedRate: number;
  /** Requests measured (sent after `settle`). */
  total: number;
  /** Requests sent, `settle` included. */
  sent: number;
  latency: LatencySummary;
  non2xx: number;
  errors: number;
  cpuUsPerReq: number;
  cpu: CpuReport;
  /** p99 of how late requests left against their schedule (the client's own jitter). */
  sendLagP99Ms: number;
}

const REQUEST_TIMEOUT_MS = 5_000;

export async function fixedRate(target: LoadTarget, options: FixedRateOptions): Promise<FixedRateResult> {
  // A pool as deep as the rate needs: idle sockets are reused, new ones open when all are busy.
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const latencies = new Samples();
  const lags = new Samples();
  const total = Math.round(options.rate * options.duration);
  const start = performance.now();
  const measureFrom = start + options.settle * 1000;
  let sent = 0;
  let finished = 0;
  let measuredDone = 0;
  let lastDone = start;
  let non2xx = 0;
  let errors = 0;
  const meter = cpuMeter(target.pids, options.others);

  let allFinished = () => {};
  const whenAllFinished = new Promise<void>((resolve) => (allFinished = resolve));
  const finish = () => {
    if (++finished === total) allFinished();
  };

  const fire = (index: number) => {
    const sentAt = performance.now();
    const measured = sentAt >= measureFrom;
    if (measured) lags.add(sentAt - (start + (index * 1000) / options.rate));
    const url = target.urls[index % target.urls.length] as string;
    let over = false; // a response cut mid-body would otherwise count twice
    const done = () => {
      if (!over) {
        over = true;
        finish();
      }
    };
    const req = request(url, { agent, headers: target.headers }, (res) => {
      if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) non2xx++;
      res.resume();
      res.once('end', () => {
        const now = performance.now();
        if (measured) {
          latencies.add(now - sentAt);
          measuredDone++;
          lastDone = now;
        }
        done();
      });
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.once('error', () => {
      errors++;
      done();
    });
    req.end();
  };

  await new Promise<void>((resolve) => {
    // setInterval(1) wakes about every millisecond; each wake sends what the schedule owes.
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * options.rate));
      while (sent < due) fire(sent++);
      if (sent === total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, REQUEST_TIMEOUT_MS + 1_000).unref());
  await Promise.race([whenAllFinished, deadline]);
  // A request still unanswered past the deadline (queued behind the pool, so its own timer
  // never started) failed as surely as one that timed out: count it, never drop it.
  errors += total - finished;
  const cpu = meter.stop(finished);
  agent.destroy();
  const window = (lastDone - measureFrom) / 1000;
  return {
    rate: options.rate,
    achievedRate: window > 0 ? measuredDone / window : 0,
    total: measuredDone,
    sent,
    latency: latencies.summary(),
    non2xx,
    errors,
    cpuUsPerReq: cpu.usPerReq.target as number,
    cpu,
    sendLagP99Ms: lags.summary().p99,
  };
}
