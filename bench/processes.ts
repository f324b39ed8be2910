/*
 * The processes a bench starts. Each is remembered by its ChildProcess and, when the bench
 * exits however it exits (end, error, Ctrl-C), killed with SIGKILL together with its own
 * children (gateway workers, nginx workers outlive a killed master). Nothing else is ever
 * signalled.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pinnedCommand } from './affinity.js';

const started = new Set<ChildProcess>();
const exitHooks: (() => void)[] = [];

/** Direct children of `pid` (from /proc), or none if it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    const list = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return list === '' ? [] : list.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(processTree)];
}

function killTree(proc: ChildProcess): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const below = processTree(proc.pid).slice(1);
  proc.kill('SIGKILL');
  for (const pid of below) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.on('exit', () => {
  for (const proc of started) killTree(proc);
  for (const hook of exitHooks) hook();
});
// Without these, Ctrl-C or a SIGTERM would end the bench without running the 'exit' cleanup.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => process.exit(code));
}

/** Runs `hook` when the bench exits (for processes started by helpers, e.g. redis-server). */
export function onExit(hook: () => void): void {
  exitHooks.push(hook);
}

/**
 * Spawns a process the bench owns: killed with its children when the bench exits. With
 * `cpus`, it runs under `taskset -c` (same PID: taskset execs the command).
 */
export function spawnOwned(
  command: string,
  args: string[],
  options: SpawnOptions,
  cpus?: readonly number[],
): ChildProcess {
  const proc = spawn(...pinnedCommand(command, args, cpus), options);
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  return proc;
}

/**
 * Waits until `proc` prints a line matching `pattern` on stdout and returns the match; from
 * then on stdout is drained unread (request logs must not pile up in the bench's memory).
 */
export function waitForLine(
  proc: ChildProcess,
  pattern: RegExp,
  what: string,
  timeoutMs = 20_000,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const done = (error: Error | undefined, match?: RegExpMatchArray) => {
      clearTimeout(timer);
      proc.stdout?.off('data', onData);
      proc.off('exit', onEarlyExit);
      proc.stdout?.resume();
      if (error) reject(error);
      else resolve(match as RegExpMatchArray);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = pattern.exec(seen);
      if (match) done(undefined, match);
    };
    const onEarlyExit = (code: number | null) =>
      done(new Error(`${what} exited (${code}) before it was ready`));
    const timer = setTimeout(() => done(new Error(`${what} not ready within ${timeoutMs} ms`)), timeoutMs);
    proc.stdout?.on('data', onData);
    proc.once('exit', onEarlyExit);
  });
}

/**
 * Waits until the file a process writes its stdout to holds a line matching `pattern`.
 * Gateways log every request: written to a file, their logs cost the bench process (the load
 * generator, whose event loop times every response) nothing, as they would in production,
 * where another process collects them.
 */
export async function waitForFileLine(
  proc: ChildProcess,
  file: string,
  pattern: RegExp,
  what: string,
  timeoutMs = 20_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(await readFile(file, 'utf8').catch(() => ''));
    if (match) return match;
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}) before it was ready`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A bench-owned Node process running `script`, ready once it prints `ready <port>`. It gets
 * an IPC channel: bench servers exit when it closes, so they go with the bench even when the
 * bench is killed outright.
 */
export async function startNodeServer(
  script: string,
  env: NodeJS.ProcessEnv = {},
  cpus?: readonly number[],
): Promise<{ proc: ChildProcess; port: number; ports: number[] }> {
  const proc = spawnOwned(
    process.execPath,
    [script],
    { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env: { ...process.env, ...env } },
    cpus,
  );
  // `ready <port>`, or `ready <port> <port>…` from a server listening on several.
  const match = await waitForLine(proc, /^ready (\d+(?: \d+)*)$/m, script);
  // The channel must not keep the bench itself alive.
  proc.channel?.unref();
  const ports = (match[1] as string).split(' ').map(Number);
  return { proc, port: ports[0] as number, ports };
}

/** Sends `signal`, waits for the exit; after `timeoutMs` kills the process and its children. */
export async function stopProcess(
  proc: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs = 5_000,
): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill(signal);
  const timer = setTimeout(() => killTree(proc), timeoutMs);
  await exited;
  clearTimeout(timer);
}
