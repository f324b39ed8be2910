/*
 * `npm run bench:ratelimit`: what the `ratelimit` middleware costs, side by side in one run.
 *
 *   bare      a route with no middleware (the baseline)
 *   redis     [ratelimit] with the Redis store (a redis-server this script starts)
 *   embedded  [ratelimit] with the embedded store (buckets in the primary, over IPC)
 *   hammer    [ratelimit] with Redis, one client far over its budget (nearly all 429s):
 *             shows the local block cache keeping Redis out of the refusals
 *
 * Fixed flags: 1 worker per gateway (`--workers N` to change), 50 connections, pipelining
 * 1, 1 s warm-up then 5 s measured per target (`--duration S`), targets interleaved over
 * 2 rounds (`--rounds R`) so machine drift hits them alike; the median is reported.
 * CPU µs/req (user+sys of the gateway's primary and workers ÷ requests) is the steadiest
 * figure on a shared machine; req/s moves with whatever else runs. Loopback only. Redis load is reported per request from INFO deltas: `script calls/req` counts
 * EVALSHA/EVAL commands, `reads/req` Redis's socket reads (total_reads_processed), i.e.
 * network round trips after auto-pipelining batched concurrent commands.
 */
import {
  inRounds,
  load,
  median,
  startGateway as start,
  startUpstream,
  stopGateways,
  sideBySideFlags,
  warmUp,
} from './harness.js';
import { startRedis } from '../test/helpers/redis.js';
import { calibrate, perRequest, redisCounters } from './redis-stats.js';

const FLAGS = sideBySideFlags();
const { workers: WORKERS, duration: DURATION, rounds: ROUNDS, connections: CONNECTIONS } = FLAGS;

const upstream = await startUpstream();
const target = upstream.url;
const redis = await startRedis();
// A failed run must not leave redis-server behind.
process.on('exit', () => redis.kill('SIGKILL'));
const startGateway = (config: Record<string, unknown>) => start(config, WORKERS);

const open = { requests_per_second: 1e6, burst: 1e6 };
const gateways = {
  bare: await startGateway({ routes: [{ path: '/bench', target }] }),
  redis: await startGateway({
    routes: [{ path: '/bench', target, middleware: ['ratelimit'] }],
    rate_limit: open,
    redis: { url: redis.url },
  }),
  embedded: await startGateway({
    routes: [{ path: '/bench', target, middleware: ['ratelimit'] }],
    rate_limit: open,
  }),
  hammer: await startGateway({
    routes: [{ path: '/bench', target, middleware: ['ratelimit'] }],
    rate_limit: { requests_per_second: 1, burst: 1 },
    redis: { url: redis.url },
  }),
};
type Name = keyof typeof gateways;

const overhead = await calibrate(redis);

async function measure(name: Name, round: number) {
  process.stderr.write(`round ${round}/${ROUNDS}: ${name}…\n`);
  const { url, proc } = gateways[name];
  await warmUp(url, { connections: CONNECTIONS, duration: 1 });
  const before = await redisCounters(redis);
  const r = await load(url, proc.pid as number, { connections: CONNECTIONS, duration: DURATION });
  const redisLoad = perRequest(before, await redisCounters(redis), r.total, overhead);
  return { ...r, cmdsPerReq: redisLoad.scriptsPerReq, readsPerReq: redisLoad.readsPerReq };
}

const names = Object.keys(gateways) as Name[];
const runs = await inRounds(names, ROUNDS, measure);

const bare = median(runs.bare.map((r) => r.rps));
console.log(FLAGS.headline('ratelimit'));
const bareCpu = median(runs.bare.map((r) => r.cpuUsPerReq));
console.log(
  '| target | req/s (median) | x bare | gateway CPU µs/req | x bare | p99 ms | non-2xx | errors | Redis script calls/req | Redis reads/req |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const name of names) {
  const r = runs[name];
  const rps = median(r.map((x) => x.rps));
  const cpu = median(r.map((x) => x.cpuUsPerReq));
  const usesRedis = name === 'redis' || name === 'hammer';
  console.log(
    `| ${name} | ${rps.toFixed(0)} | ${(rps / bare).toFixed(2)} | ${cpu.toFixed(0)} | ${(cpu / bareCpu).toFixed(2)} | ${median(r.map((x) => x.latency.p99))} | ${r.reduce((s, x) => s + x.non2xx, 0)} | ${r.reduce((s, x) => s + x.errors, 0)} | ${usesRedis ? median(r.map((x) => x.cmdsPerReq)).toFixed(3) : '-'} | ${usesRedis ? median(r.map((x) => x.readsPerReq)).toFixed(3) : '-'} |`,
  );
}

await stopGateways(Object.values(gateways));
await redis.stop();
upstream.server.closeAllConnections();
upstream.server.close();
