import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from './net.js';

/** The built CLI, as users run it. */
export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface RunningGateway {
  port: number;
  url: string;
  proc: ChildProcess;
  /** Every stdout line so far (JSON logs). */
  lines: string[];
  stderr(): string;
  /** Parsed JSON log records so far. */
  records(): Record<string, unknown>[];
  waitFor(
    predicate: (record: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export async function writeConfig(config: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'portico-test-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, typeof config === 'string' ? config : stringify(config));
  return file;
}

/**
 * Starts the real CLI (primary + workers) with `config` (an object; `server.port` and
 * `admin.port` are filled with free ports unless given) and waits for "portico ready".
 */
export async function startGateway(
  config: Record<string, unknown>,
  options: {
    entry?: string;
    env?: NodeJS.ProcessEnv;
    workers?: number;
    waitReady?: boolean;
    /** In its own process group (pgid = its pid), to signal it as a terminal would. */
    detached?: boolean;
    /** Runs after the config file is written (e.g. to put key files beside it). */
    beforeStart?: (configFile: string) => Promise<void>;
  } = {},
): Promise<RunningGateway> {
  const server = { workers: options.workers ?? 1, ...(config.server as object) } as Record<string, unknown>;
  server.port ??= await freePort();
  server.host ??= '127.0.0.1';
  // Every gateway gets its own admin port, as tests run in parallel; unless the test sets it,
  // itself or through the deprecated `metrics.prometheus.port`.
  const admin = { ...(config.admin as object) } as Record<string, unknown>;
  const prometheus = (config.metrics as { prometheus?: { port?: unknown } } | undefined)?.prometheus;
  if (prometheus?.port === undefined) admin.port ??= await freePort();
  const file = await writeConfig({ ...config, server, admin });
  await options.beforeStart?.(file);
  const entry = options.entry ?? CLI;
  const proc = spawn(process.execPath, [entry, '--config', file], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const lines: string[] = [];
  let stderr = '';
  let buffered = '';
  const waiters: {
    predicate: (r: Record<string, unknown>) => boolean;
    resolve: (r: Record<string, unknown>) => void;
  }[] = [];
  const parse = (line: string) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl = buffered.indexOf('\n');
    while (nl !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      const record = parse(line);
      if (record) {
        for (const w of [...waiters]) {
          if (w.predicate(record)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(record);
          }
        }
      }
      nl = buffered.indexOf('\n');
    }
  });
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  // The config's temporary directory goes with the gateway (thousands of runs left them behind).
  void exited.then(() => rm(dirname(file), { recursive: true, force: true }));
  const records = () => lines.map(parse).filter((r): r is Record<string, unknown> => r !== undefined);
  const waitFor = (predicate: (r: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const found = records().find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `log line not seen within ${timeoutMs} ms; stderr: ${stderr}; stdout: ${lines.join('\n')}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        predicate,
        resolve: (r: Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      waiters.push(waiter);
      void exited.then(() => {
        if (waiters.includes(waiter)) {
          clearTimeout(timer);
          reject(new Error(`gateway exited before the log line; stderr: ${stderr}`));
        }
      });
    });
  };
  const port = server.port as number;
  if (options.waitReady !== false) await waitFor((r) => r.msg === 'portico ready', 15_000);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    lines,
    stderr: () => stderr,
    records,
    waitFor,
    exited,
    /** Signals the primary and waits for its exit; a gateway that does not stop fails the test. */
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      // Drain is bounded by server.drain_timeout (10 s) plus the primary's 5 s backstop.
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<'stuck'>((resolve) => {
        timer = setTimeout(() => resolve('stuck'), 30_000);
      });
      const outcome = await Promise.race([exited, stuck]);
      clearTimeout(timer);
      if (outcome !== 'stuck') return outcome;
      proc.kill('SIGKILL');
      throw new Error(
        `gateway did not exit within 30 s of ${signal}; last log lines:\n${lines.slice(-15).join('\n')}`,
      );
    },
  };
}

/** Runs the CLI to completion (for `check`, `--help`); `cwd` is the directory it runs in. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
