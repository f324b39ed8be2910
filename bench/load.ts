/*
 * Saturation runs: autocannon with fixed flags (connections, pipelining 1, duration) against
 * a target, plus what autocannon does not measure: the target's CPU time per request (every
 * process of it, from /proc), its peak memory per process, and latencies to the microsecond
 * (each response's own timing, not autocannon's whole-millisecond histogram).
 */
import autocannon from 'autocannon';
import { type LatencySummary, Samples } from './latency.js';
import { cpuSeconds, machineBusySeconds, type ProcessMemory, sampleMemory } from './proc-stats.js';

export interface LoadTarget {
  /** Connections are spread round-robin over these (several instances of one target). */
  urls: readonly string[];
  /** Root PIDs of every process of the target. */
  pids: readonly number[];
  headers?: Record<string, string>;
}

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

const flagsOf = (target: LoadTarget, connections: number, duration: number): autocannon.Options => ({
  // autocannon takes several URLs and spreads connections over them (its README), though
  // its type declaration only says string.
  url: (target.urls.length === 1 ? target.urls[0] : target.urls) as string,
  connections,
  pipelining: 1,
  duration,
  headers: target.headers ?? {},
});

/** A 1 s run whose numbers are thrown away (JIT, connection pools, caches); its request count. */
export async function warmUp(target: LoadTarget, connections: number): Promise<number> {
  return (await autocannon(flagsOf(target, connections, 1))).requests.total;
}

/** `duration` s at full speed with fixed flags. */
export async function saturate(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const latencies = new Samples();
  const memory = sampleMemory(target.pids);
  const meter = cpuMeter(target.pids, options.others);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(flagsOf(target, options.connections, options.duration), (err, res) =>
      err ? reject(err as Error) : resolve(res),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.add(responseTime));
  });
  const total = result.requests.total;
  const cpu = meter.stop(total);
  return {
    total,
    rps: total / (result.duration > 0 ? result.duration : options.duration),
    cpuUsPerReq: cpu.usPerReq.target as number,
    cpu,
    latency: latencies.summary(),
    non2xx: result.non2xx,
    errors: result.errors,
    memory: memory.stop(),
  };
}
