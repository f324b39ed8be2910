import { type ChildProcess, spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { freePort, sleep } from './net.js';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

export interface RunningRedis {
  /** `redis://127.0.0.1:<port>`, with `:<password>@` when started with one. */
  url: string;
  port: number;
  /** PID of the current redis-server (changes after `restart`). */
  readonly pid: number;
  /** Sends a signal to the redis-server this helper started (SIGSTOP, SIGCONT, SIGKILL…). */
  kill(signal: NodeJS.Signals): void;
  /** Starts a fresh, empty redis-server on the same port (after a kill). */
  restart(): Promise<void>;
  /** One command over a raw RESP connection, reply as text (no client library involved). */
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A real redis-server on a free loopback port, without persistence (`--save ''
 * --appendonly no`), so a restart is an empty Redis as after a crash without AOF.
 * `password` starts it with `requirepass`; `command` then authenticates first.
 */
export async function startRedis(options: { password?: string } = {}): Promise<RunningRedis> {
  const port = await freePort();
  const { password } = options;
  const auth = password === undefined ? [] : ['--requirepass', password];
  let proc: ChildProcess;
  const launch = async () => {
    proc = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
        ...auth,
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        if ((await send(port, ['PING'], password)).startsWith('+PONG')) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error('redis-server did not start');
      await sleep(20);
    }
  };
  await launch();
  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => p.once('exit', () => resolve()));
  return {
    url: `redis://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}127.0.0.1:${port}`,
    port,
    get pid() {
      return proc.pid ?? -1;
    },
    kill(signal) {
      proc.kill(signal);
    },
    async restart() {
      await exited(proc);
      await launch();
    },
    command: (...args) => send(port, args, password),
    async stop() {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await exited(proc);
    },
  };
}

const encode = (args: string[]) =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/**
 * Minimal RESP: enough for PING, DBSIZE, TTL, KEYS, INFO, FLUSHALL in tests. With a
 * password, AUTH goes first on the same connection and its `+OK` is not part of the reply.
 */
function send(port: number, args: string[], password?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = '';
    let authPending = password !== undefined;
    socket.setTimeout(3_000, () => socket.destroy(new Error('redis command timeout')));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
      if (authPending && data.startsWith('+OK\r\n')) {
        authPending = false;
        data = data.slice(5);
      }
      if (complete(data)) {
        socket.end();
        resolve(data);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed; got ${JSON.stringify(data)}`)));
    socket.connect(port, '127.0.0.1', () => {
      socket.write((password === undefined ? '' : encode(['AUTH', password])) + encode(args));
    });
  });
}

/** Whether `data` holds one whole RESP reply (simple, integer, bulk or flat array). */
function complete(data: string): boolean {
  const end = data.indexOf('\r\n');
  if (end === -1) return false;
  const kind = data[0];
  if (kind === '+' || kind === '-' || kind === ':') return true;
  const n = Number(data.slice(1, end));
  if (kind === '$') return n < 0 || Buffer.byteLength(data) >= end + 2 + n + 2;
  if (kind === '*') {
    if (n <= 0) return true;
    let at = end + 2;
    for (let i = 0; i < n; i++) {
      const lineEnd = data.indexOf('\r\n', at);
      if (lineEnd === -1) return false;
      if (data[at] === '$') {
        const len = Number(data.slice(at + 1, lineEnd));
        at = lineEnd + 2 + (len < 0 ? 0 : len + 2);
        if (at > data.length) return false;
      } else at = lineEnd + 2;
    }
    return true;
  }
  return false;
}

/** Parses an integer reply (`:42`). */
export const integerReply = (reply: string): number => Number(reply.slice(1, reply.indexOf('\r\n')));

/** Sum of `calls=` over `cmdstat_*` lines of `INFO commandstats` (every command Redis ran). */
export function commandCalls(info: string, only?: readonly string[]): number {
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
    if (only === undefined || only.includes(match[1] as string)) total += Number(match[2]);
  }
  return total;
}
