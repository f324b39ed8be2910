/*
 * Saturation runs: autocannon with fixed flags (connections, pipelining 1, duration) against
 * a target, plus what autocannon does not measure: the target's CPU time per request (every
 * process of it, from /proc), its peak memory per process, and latencies to the microsecond
 * (each response's own timing, not autocannon's whole-millisecond histogram). On many-core
 * layouts the load comes from several threads (load-thread.ts), each with its share of the
 * connections: autocannon's own `workers` option would drop the per-response timings.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { type LatencySummary, Samples } from './latency.js';
import { type ClientSpec, type RawRun, runClient } from './load-client.js';
import { cpuSeconds, machineBusySeconds, type ProcessMemory, sampleMemory } from './proc-stats.js';

export interface LoadTarget {
  /** Connections are spread round-robin over these (several instances of one target). */
  urls: readonly string[];
  /** Root PIDs of every process of the target. */
  pids: readonly number[];
  headers?: Record<string, string>;
  /** `h2`: HTTP/2 over TLS (h2-client.ts); else HTTP/1.1 (autocannon), over TLS for https URLs. */
  protocol?: 'h1' | 'h2';
  /** PEM of the CA of a TLS target's certificate. */
  ca?: string;
}

const LOAD_THREAD = new URL('./load-thread.js', import.meta.url);

export interface LoadOptions {
  connections: number;
  /** Seconds. */
  duration: number;
  /** Other process groups whose CPU time per request is recorded too (upstream, Redis…). */
  others?: Record<string, readonly number[]>;
}

export type CpuReport = {
  /** CPU µs (user + sys) per request of each group: `target`, the `others`, and `client`
   * (the bench process itself, the load generator). */
  usPerReq: Record<string, number>;
  /** The same in % of one core over the run, plus `foreign`: what the machine spent on
   * anything but the bench and its processes (other people's work on a shared machine).
   * A `client` near 100 means the load generator, not the target, set the pace. */
  pctOfCore: Record<string, number>;
};

/** Measures CPU time of the target, the `others`, the bench process and the machine. */
export function cpuMeter(target: readonly number[], others: Record<string, readonly number[]> = {}) {
  const groups: Record<string, readonly number[]> = { target, ...others };
  const everyPid = [...new Set(Object.values(groups).flat())];
  const read = () => {
    const { user, system } = process.cpuUsage();
    const client = (user + system) / 1e6;
    const bench = cpuSeconds(everyPid) + client;
    return {
      groups: {
        ...Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, cpuSeconds(pids)])),
        client,
      } as Record<string, number>,
      foreign: machineBusySeconds() - bench,
    };
  };
  const before = read();
  const startedAt = performance.now();
  return {
    stop(requests: number): CpuReport {
      const after = read();
      const elapsedS = (performance.now() - startedAt) / 1000;
      const used = Object.entries(after.groups).map(([name, s]): [string, number] => [
        name,
        s - (before.groups[name] as number),
      ]);
      const foreign = Math.max(0, after.foreign - before.foreign);
      return {
        usPerReq: Object.fromEntries(
          used.map(([name, s]) => [name, requests > 0 ? (s * 1e6) / requests : 0]),
        ),
        pctOfCore: Object.fromEntries(
          [...used, ['foreign', foreign] as [string, number]].map(([name, s]) => [
            name,
            (s / elapsedS) * 100,
          ]),
        ),
      };
    },
  };
}

export interface LoadResult {
  total: number;
  rps: number;
  /** CPU µs per request of the target's processes. */
  cpuUsPerReq: number;
  cpu: CpuReport;
  latency: LatencySummary;
  non2xx: number;
  /** Socket errors and timeouts (autocannon counts timeouts among errors). */
  errors: number;
  memory: ProcessMemory[];
}

/** How the load is generated: threads (1: in the bench process, as before issue 17). */
export interface ClientOptions {
  threads?: number;
}

/** `spec` split over `threads` load-generator threads (connections as even as they go). */
async function drive(spec: ClientSpec, threads = 1): Promise<RawRun> {
  if (threads <= 1) return runClient(spec);
  const count = Math.min(threads, spec.connections);
  const workers = Array.from({ length: count }, (_, i) => {
    const share = Math.floor(spec.connections / count) + (i < spec.connections % count ? 1 : 0);
    return new Worker(LOAD_THREAD, { workerData: { ...spec, connections: share } });
  });
  try {
    // All threads load their client first, then start together.
    await Promise.all(workers.map((w) => once(w, 'message')));
    const runs = await Promise.all(
      workers.map(async (w) => {
        w.postMessage('start');
        const [reply] = (await once(w, 'message')) as [{ run?: RawRun; error?: string }];
        if (reply.run === undefined) throw new Error(`load thread: ${reply.error}`);
        return reply.run;
      }),
    );
    const latencies = new Samples();
    for (const r of runs) latencies.addAll(r.latencies);
    return {
      total: runs.reduce((n, r) => n + r.total, 0),
      durationS: Math.max(...runs.map((r) => r.durationS)),
      non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
      errors: runs.reduce((n, r) => n + r.errors, 0),
      latencies: latencies.raw(),
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

const specOf = (target: LoadTarget, connections: number, duration: number): ClientSpec => ({
  protocol: target.protocol ?? 'h1',
  urls: target.urls,
  headers: target.headers ?? {},
  connections,
  duration,
  ...(target.ca === undefined ? {} : { ca: target.ca }),
});

/** A 1 s run whose numbers are thrown away (JIT, connection pools, caches); its request count. */
export async function warmUp(
  target: LoadTarget,
  connections: number,
  client: ClientOptions = {},
): Promise<number> {
  return (await drive(specOf(target, connections, 1), client.threads)).total;
}

/** `duration` s at full speed with fixed flags. */
export async function saturate(
  target: LoadTarget,
  options: LoadOptions,
  client: ClientOptions = {},
): Promise<LoadResult> {
  const memory = sampleMemory(target.pids);
  const meter = cpuMeter(target.pids, options.others);
  const run = await drive(specOf(target, options.connections, options.duration), client.threads);
  const cpu = meter.stop(run.total);
  const latencies = new Samples();
  latencies.addAll(run.latencies);
  return {
    total: run.total,
    rps: run.total / run.durationS,
    cpuUsPerReq: cpu.usPerReq.target as number,
    cpu,
    latency: latencies.summary(),
    non2xx: run.non2xx,
    errors: run.errors,
    memory: memory.stop(),
  };
}
