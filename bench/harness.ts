/*
 * Shared pieces of the bench scripts: a minimal keep-alive upstream, gateways started through
 * the real CLI, CPU time per gateway (primary + workers) from /proc, and autocannon runs with
 * fixed flags. Loopback only; everything started here is killed on exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { stringify } from 'yaml';
import { freePort } from '../test/helpers/net.js';

export const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const started: ChildProcess[] = [];
// A failed run must not leave gateways behind.
process.on('exit', () => {
  for (const proc of started) proc.kill('SIGKILL');
});

/** The upstream's answer (~100 bytes of JSON), also served by out-of-process upstreams. */
export const BODY = JSON.stringify({
  id: 42,
  name: 'portico bench',
  items: [1, 2, 3],
  ok: true,
  pad: 'x'.repeat(30),
});

/** The upstream every target proxies to: ~100 bytes of JSON, keep-alive. */
export async function startUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Starts the real CLI with `config` (server section filled in) and waits for "portico ready". */
export async function startGateway(
  config: Record<string, unknown>,
  workers: number,
): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'portico-bench-'));
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    stringify({ server: { port, host: '127.0.0.1', workers }, logging: { level: 'info' }, ...config }),
  );
  const proc = spawn(process.execPath, [CLI, '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, REDIS_URL: '' },
  });
  started.push(proc);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start')), 15_000);
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('portico ready')) {
        clearTimeout(timer);
        // From now on the log lines are drained unread, so the bench holds no growing buffer.
        proc.stdout?.off('data', onData);
        proc.stdout?.resume();
        resolve();
      }
    };
    proc.stdout?.on('data', onData);
  });
  return { url: `http://127.0.0.1:${port}/bench`, proc };
}

/** Starts a plain Node process running `script` (ESM) and waits for it to print `ready`. */
export async function startScript(script: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  started.push(proc);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('script did not start')), 10_000);
    proc.stdout?.once('data', () => {
      clearTimeout(timer);
      proc.stdout?.resume();
      resolve();
    });
  });
  return proc;
}

export async function stopGateways(gateways: { proc: ChildProcess }[]): Promise<void> {
  for (const { proc } of gateways) proc.kill('SIGTERM');
  await Promise.all(gateways.map(({ proc }) => new Promise((resolve) => proc.once('exit', resolve))));
}

/** CPU seconds (user + sys) used so far by a gateway: its primary and every worker. */
export async function cpuSeconds(pid: number): Promise<number> {
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

type LoadOptions = { connections: number; duration: number; headers?: Record<string, string> };
const flagsOf = (url: string, options: LoadOptions) => ({
  url,
  connections: options.connections,
  pipelining: 1,
  headers: options.headers ?? {},
});

/** A 1 s run whose numbers are thrown away (JIT, connection pools, caches). */
export async function warmUp(url: string, options: LoadOptions): Promise<void> {
  await autocannon({ ...flagsOf(url, options), duration: 1 });
}

/** `duration` s measured with fixed flags; CPU µs per request of the gateway. */
export async function load(url: string, pid: number, options: LoadOptions) {
  const flags = flagsOf(url, options);
  const cpuBefore = await cpuSeconds(pid);
  const result = await autocannon({ ...flags, duration: options.duration });
  const cpuAfter = await cpuSeconds(pid);
  const total = result.requests.total;
  return {
    total,
    cpuUsPerReq: ((cpuAfter - cpuBefore) * 1e6) / total,
    rps: total / options.duration,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

export type LoadResult = Awaited<ReturnType<typeof load>>;
export interface Target {
  url: string;
  pid: number;
  headers: Record<string, string>;
}

/**
 * Measures every target once per round, interleaved (A B A B…) so drift on a shared machine
 * hits all of them alike. Progress goes to stderr.
 */
export async function interleave<N extends string>(
  targets: Record<N, Target>,
  options: { rounds: number; connections: number; duration: number; warmUp: boolean },
): Promise<Record<N, LoadResult[]>> {
  const names = Object.keys(targets) as N[];
  const runs = Object.fromEntries(names.map((n) => [n, [] as LoadResult[]])) as Record<N, LoadResult[]>;
  for (let round = 1; round <= options.rounds; round++) {
    for (const name of names) {
      process.stderr.write(`round ${round}/${options.rounds}: ${name}…\n`);
      const { url, pid, headers } = targets[name];
      const flags = { connections: options.connections, duration: options.duration, headers };
      if (options.warmUp) await warmUp(url, flags);
      runs[name].push(await load(url, pid, flags));
    }
  }
  return runs;
}
