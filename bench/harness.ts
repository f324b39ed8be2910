/*
 * What the bench scripts share: flags, the in-process upstream of bench:auth and
 * bench:ratelimit, gateways started through the real CLI, and the interleaved round loop.
 * Measuring is in load.ts (saturation) and fixed-rate.ts, process handling in processes.ts.
 * Loopback only; everything started here is killed on exit.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from '../test/helpers/net.js';
import { type LoadResult, saturate, warmUp as warmUpTarget } from './load.js';
import { spawnOwned, stopProcess, waitForFileLine } from './processes.js';
import { answer } from './servers/body.js';

export { BODY } from './servers/body.js';
export type { LoadResult } from './load.js';

/** `--name value` as a string, or undefined. */
export const option = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
};

/** `--name N` as a number, or `fallback`. */
export const arg = (name: string, fallback: number) => {
  const value = option(name);
  return value === undefined ? fallback : Number(value);
};

/**
 * The fixed flags of the side-by-side scripts (`bench:auth`, `bench:ratelimit`): 1 worker,
 * 5 s, 2 rounds, 50 connections; `--workers`, `--duration` and `--rounds` override them.
 */
export function sideBySideFlags() {
  const flags = {
    workers: arg('workers', 1),
    duration: arg('duration', 5),
    rounds: arg('rounds', 2),
    connections: 50,
  };
  return {
    ...flags,
    /** The line printed above a script's table. */
    headline: (name: string) =>
      `\nportico ${name} bench: ${flags.workers} worker(s), ${flags.connections} connections, ${flags.duration} s x ${flags.rounds} rounds, node ${process.version}\n`,
  };
}

/** The upstream of bench:auth and bench:ratelimit, in the bench's own process. */
export async function startUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

export const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/**
 * Starts the real CLI with `config` and waits for "portico ready". Its `server` section is
 * filled in (port, host, workers) and may add keys (`tls`, which makes the URL https). `cpus`:
 * the gateway runs under `taskset -c` (its workers inherit the CPUs).
 */
export async function startGateway(
  config: Record<string, unknown>,
  workers: number,
  cli = CLI,
  cpus?: readonly number[],
): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'portico-bench-'));
  const file = join(dir, 'config.yaml');
  const { server, ...rest } = config as { server?: Record<string, unknown> };
  await writeFile(
    file,
    // Its own admin port, so the default one is never contended (a target may set it).
    stringify({
      server: { port, host: '127.0.0.1', workers, ...server },
      logging: { level: 'info' },
      admin: { port: await freePort() },
      ...rest,
    }),
  );
  // Logs go to a file, not through a pipe into this process (see waitForFileLine).
  const log = join(dir, 'gateway.log');
  const out = openSync(log, 'w');
  // PORTICO_BENCH_PROFILE=DIR: every gateway process (workers inherit the flag) writes a
  // V8 CPU profile there when it exits (NODE_OPTIONS may not carry --cpu-prof).
  const profile = process.env.PORTICO_BENCH_PROFILE;
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  // PORTICO_BENCH_NODE_ARGS: more node flags for every gateway process (to measure a V8 option).
  nodeArgs.push(...(process.env.PORTICO_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''));
  const proc = spawnOwned(
    process.execPath,
    [...nodeArgs, cli, '--config', file],
    { stdio: ['ignore', out, 'inherit'], env: { ...process.env, REDIS_URL: '' } },
    cpus,
  );
  closeSync(out);
  proc.once('exit', () => void rm(dir, { recursive: true, force: true }));
  await waitForFileLine(proc, log, /portico ready/, 'gateway');
  const scheme = server?.tls === undefined ? 'http' : 'https';
  return { url: `${scheme}://127.0.0.1:${port}/bench`, proc };
}

export async function stopGateways(gateways: { proc: ChildProcess }[]): Promise<void> {
  await Promise.all(gateways.map(({ proc }) => stopProcess(proc)));
}

type LoadOptions = { connections: number; duration: number; headers?: Record<string, string> };

/** A 1 s run whose numbers are thrown away (JIT, connection pools, caches). */
export async function warmUp(url: string, options: LoadOptions): Promise<void> {
  await warmUpTarget({ urls: [url], pids: [], headers: options.headers ?? {} }, options.connections);
}

/** `duration` s measured with fixed flags against one gateway (PID of its primary). */
export async function load(url: string, pid: number, options: LoadOptions): Promise<LoadResult> {
  return saturate({ urls: [url], pids: [pid], headers: options.headers ?? {} }, options);
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/**
 * Measures every name once per round, in the same order each round (A B A B…), so drift on
 * a shared machine hits all of them alike.
 */
export async function inRounds<N extends string, R>(
  names: readonly N[],
  rounds: number,
  measure: (name: N, round: number) => Promise<R>,
): Promise<Record<N, R[]>> {
  const runs = Object.fromEntries(names.map((n) => [n, [] as R[]])) as Record<N, R[]>;
  for (let round = 1; round <= rounds; round++) {
    for (const name of names) runs[name].push(await measure(name, round));
  }
  return runs;
}

export interface Target {
  url: string;
  pid: number;
  headers: Record<string, string>;
}

/** `inRounds` of warm-up + `load` per target; progress goes to stderr. */
export function interleave<N extends string>(
  targets: Record<N, Target>,
  options: { rounds: number; connections: number; duration: number; warmUp: boolean },
): Promise<Record<N, LoadResult[]>> {
  return inRounds(Object.keys(targets) as N[], options.rounds, async (name, round) => {
    process.stderr.write(`round ${round}/${options.rounds}: ${name}…\n`);
    const { url, pid, headers } = targets[name];
    const flags = { connections: options.connections, duration: options.duration, headers };
    if (options.warmUp) await warmUp(url, flags);
    return load(url, pid, flags);
  });
}
