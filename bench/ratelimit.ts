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
 * figure on a shared machine; req/s moves with whatever else runs. Loopback only. Redis load is reported per request from INFO deltas: `cmds/req` counts
 * EVALSHA/EVAL commands, `reads/req` Redis's socket reads (total_reads_processed), i.e.
 * network round trips after auto-pipelining batched concurrent commands.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { stringify } from 'yaml';
import { freePort } from '../test/helpers/net.js';
import { commandCalls, startRedis } from '../test/helpers/redis.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const WORKERS = arg('workers', 1);
const DURATION = arg('duration', 5);
const ROUNDS = arg('rounds', 2);
const CONNECTIONS = 50;
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

const BODY = JSON.stringify({
  id: 42,
  name: 'portico bench',
  items: [1, 2, 3],
  ok: true,
  pad: 'x'.repeat(30),
});
const upstream = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
  res.end(BODY);
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
const redis = await startRedis();
const started: ChildProcess[] = [];
// A failed run must not leave gateways or redis-server behind.
process.on('exit', () => {
  for (const proc of started) proc.kill('SIGKILL');
  redis.kill('SIGKILL');
});

async function startGateway(config: Record<string, unknown>): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'portico-bench-'));
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    stringify({
      server: { port, host: '127.0.0.1', workers: WORKERS },
      logging: { level: 'info' },
      ...config,
    }),
  );
  const proc = spawn(process.execPath, [CLI, '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, REDIS_URL: '' },
  });
  started.push(proc);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start')), 15_000);
    let seen = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('portico ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { url: `http://127.0.0.1:${port}/bench`, proc };
}

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

/** CPU seconds (user + sys) used so far by a gateway: its primary and every worker. */
async function cpuSeconds(pid: number): Promise<number> {
  const ticks = async (p: number) => {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  };
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/);
  let total = await ticks(pid);
  for (const child of children) if (child !== '') total += await ticks(Number(child));
  return total / 100; // USER_HZ
}

async function redisCounters() {
  const commands = commandCalls(await redis.command('INFO', 'commandstats'), ['evalsha', 'eval']);
  const stats = await redis.command('INFO', 'stats');
  return { commands, reads: Number(/total_reads_processed:(\d+)/.exec(stats)?.[1] ?? 0) };
}

async function measure(name: Name) {
  const url = gateways[name].url;
  await autocannon({ url, connections: CONNECTIONS, pipelining: 1, duration: 1 }); // warm-up
  const pid = gateways[name].proc.pid as number;
  const before = await redisCounters();
  const cpuBefore = await cpuSeconds(pid);
  const result = await autocannon({ url, connections: CONNECTIONS, pipelining: 1, duration: DURATION });
  const cpuAfter = await cpuSeconds(pid);
  const after = await redisCounters();
  const total = result.requests.total;
  return {
    cpuUsPerReq: ((cpuAfter - cpuBefore) * 1e6) / total,
    rps: total / DURATION,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    cmdsPerReq: (after.commands - before.commands) / total,
    // INFO itself is one read per call; two calls per measurement.
    readsPerReq: Math.max(0, after.reads - before.reads - 2) / total,
  };
}

const runs: Record<Name, Awaited<ReturnType<typeof measure>>[]> = {
  bare: [],
  redis: [],
  embedded: [],
  hammer: [],
};
const names = Object.keys(gateways) as Name[];
for (let round = 1; round <= ROUNDS; round++) {
  for (const name of names) {
    process.stderr.write(`round ${round}/${ROUNDS}: ${name}…\n`);
    runs[name].push(await measure(name));
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const bare = median(runs.bare.map((r) => r.rps));
console.log(
  `\nportico ratelimit bench: ${WORKERS} worker(s), ${CONNECTIONS} connections, ${DURATION} s x ${ROUNDS} rounds, node ${process.version}\n`,
);
const bareCpu = median(runs.bare.map((r) => r.cpuUsPerReq));
console.log(
  '| target | req/s (median) | x bare | gateway CPU µs/req | x bare | p99 ms | non-2xx | errors | Redis cmds/req | Redis reads/req |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const name of names) {
  const r = runs[name];
  const rps = median(r.map((x) => x.rps));
  const cpu = median(r.map((x) => x.cpuUsPerReq));
  const usesRedis = name === 'redis' || name === 'hammer';
  console.log(
    `| ${name} | ${rps.toFixed(0)} | ${(rps / bare).toFixed(2)} | ${cpu.toFixed(0)} | ${(cpu / bareCpu).toFixed(2)} | ${median(r.map((x) => x.p99))} | ${r.reduce((s, x) => s + x.non2xx, 0)} | ${r.reduce((s, x) => s + x.errors, 0)} | ${usesRedis ? median(r.map((x) => x.cmdsPerReq)).toFixed(3) : '-'} | ${usesRedis ? median(r.map((x) => x.readsPerReq)).toFixed(3) : '-'} |`,
  );
}

for (const { proc } of Object.values(gateways)) proc.kill('SIGTERM');
await Promise.all(
  Object.values(gateways).map(({ proc }) => new Promise((resolve) => proc.once('exit', resolve))),
);
await redis.stop();
upstream.closeAllConnections();
upstream.close();
