/*
 * One load generator at saturation, HTTP/1.1 (autocannon, also over TLS) or HTTP/2 (our own
 * client on node:http2, h2-client.ts). Runs in the bench process or in one of its load
 * threads (load-thread.ts); either way every response is timed to the microsecond.
 */
import autocannon from 'autocannon';
import { h2Run } from './h2-client.js';
import { Samples } from './latency.js';

export interface ClientSpec {
  protocol: 'h1' | 'h2';
  /** Connections (h1) or streams in flight (h2) are spread round-robin over these. */
  urls: readonly string[];
  headers: Record<string, string>;
  /** h1: connections; h2: streams in flight (over h2-client.ts's sessions). */
  connections: number;
  /** Seconds. */
  duration: number;
  /** PEM of the CA that signed a TLS target's certificate (h2 verifies it; autocannon never verifies). */
  ca?: string;
}

export interface RawRun {
  total: number;
  /** Seconds the run actually lasted. */
  durationS: number;
  non2xx: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Each response's time in ms. */
  latencies: Float64Array;
}

export function runClient(spec: ClientSpec): Promise<RawRun> {
  return spec.protocol === 'h2' ? h2Run(spec) : h1Run(spec);
}

async function h1Run(spec: ClientSpec): Promise<RawRun> {
  const latencies = new Samples();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        // autocannon takes several URLs and spreads connections over them (its README), though
        // its type declaration only says string.
        url: (spec.urls.length === 1 ? spec.urls[0] : spec.urls) as string,
        connections: spec.connections,
        pipelining: 1,
        duration: spec.duration,
        headers: spec.headers,
      },
      (err, res) => (err ? reject(err as Error) : resolve(res)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.add(responseTime));
  });
  // Outside the main thread autocannon hands back its raw, unaggregated result (for its own
  // `workers` mode to merge), where the count is `totalCompletedRequests`.
  const raw = result as unknown as { totalCompletedRequests?: number };
  return {
    total: raw.totalCompletedRequests ?? result.requests.total,
    durationS: result.duration > 0 ? result.duration : spec.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    latencies: latencies.raw(),
  };
}
