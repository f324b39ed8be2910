import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { makeCert, type TestCa } from './certs.js';
import { freePort, sleep } from './net.js';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
export const REDIS_CLI = process.env.REDIS_CLI ?? 'redis-cli';

/** How the helper's own raw connection reaches a server (auth and TLS as the server needs). */
interface Access {
  password?: string;
  username?: string;
  /** PEM of the CA that signed the server's certificate: the helper speaks TLS. */
  ca?: string;
}

/** TLS only (`--port 0 --tls-port`): PEM file paths of the server's pair and of the CA. */
export interface RedisTls {
  cert: string;
  key: string;
  /**
   * The pair a server shows when it connects out (replication, cluster bus); a cluster
   * node always asks its peers for a client certificate (clientAuth usage).
   */
  clientCert: string;
  clientKey: string;
  ca: string;
  /** The CA certificate's PEM text, for the helper's own connections. */
  caPem: string;
}

/**
 * A server certificate for `localhost`/127.0.0.1 signed by `ca`, as `tls` of the helpers
 * below (one pair serves every node: Redis checks no host name between nodes).
 */
export function redisTls(ca: TestCa): RedisTls {
  const server = makeCert(ca, { cn: 'localhost', altNames: ['DNS:localhost', 'IP:127.0.0.1'] });
  const client = makeCert(ca, { cn: 'redis-node', usage: 'client' });
  return {
    cert: server.cert,
    key: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    ca: ca.cert,
    caPem: readFileSync(ca.cert, 'utf8'),
  };
}

export interface RedisStartOptions {
  /** `requirepass` (the `default` user), or the password of `username`. */
  password?: string;
  /** An ACL user with every permission; the `default` user is then switched off. */
  username?: string;
  tls?: RedisTls;
  /** More redis-server arguments (cluster mode, replicaof…). */
  args?: string[];
  /** Working directory (cluster config files); default: a fresh temporary one. */
  dir?: string;
  /** A config file, given first (a sentinel needs a writable one). */
  confFile?: string;
}

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
 * `password` starts it with `requirepass` (or as `username`'s password, an ACL user);
 * `tls` serves TLS only; `command` then authenticates and speaks TLS as needed.
 */
export async function startRedis(options: RedisStartOptions = {}): Promise<RunningRedis> {
  const port = await freePort();
  const { password, username, tls } = options;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'portico-redis-'));
  const auth =
    username !== undefined
      ? ['--user', username, 'on', `>${password ?? ''}`, '~*', '&*', '+@all', '--user', 'default', 'off']
      : password === undefined
        ? []
        : ['--requirepass', password];
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          tls.cert,
          '--tls-key-file',
          tls.key,
          '--tls-ca-cert-file',
          tls.ca,
          '--tls-client-cert-file',
          tls.clientCert,
          '--tls-client-key-file',
          tls.clientKey,
          '--tls-auth-clients',
          'no',
        ];
  const access: Access = {
    ...(password === undefined ? {} : { password }),
    ...(username === undefined ? {} : { username }),
    ...(tls === undefined ? {} : { ca: tls.caPem }),
  };
  let proc: ChildProcess;
  const launch = async () => {
    proc = spawn(
      REDIS_SERVER,
      [
        ...(options.confFile === undefined ? [] : [options.confFile]),
        ...listen,
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
        ...auth,
        ...(options.args ?? []),
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        if ((await send(port, ['PING'], access)).startsWith('+PONG')) return;
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
  const credentials =
    password === undefined
      ? ''
      : `${username === undefined ? '' : encodeURIComponent(username)}:${encodeURIComponent(password)}@`;
  return {
    url: `${tls === undefined ? 'redis' : 'rediss'}://${credentials}127.0.0.1:${port}`,
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
    command: (...args) => send(port, args, access),
    async stop() {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await exited(proc);
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunningCluster {
  /** Every node, masters and replicas as created (roles change after a failover). */
  nodes: RunningRedis[];
  /** `127.0.0.1:<port>` of every node: the seeds for `redis.cluster.nodes`. */
  seeds: string[];
  /** The node serving `slot` as master now (asked of a live node). */
  masterOf(slot: number): Promise<RunningRedis>;
  /** Resolves when every live node reports `cluster_state:ok` and every slot has a live master. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster on loopback: `masters` masters with `replicas` replicas each, created
 * with `redis-cli --cluster create`. A small `cluster-node-timeout` makes a replica take
 * over within seconds of its master's death. With `tls`, every node serves TLS only, and
 * the cluster bus and replication speak TLS too (`tls-cluster`, `tls-replication`), so
 * the nodes announce their TLS ports.
 */
export async function startRedisCluster(
  options: { masters?: number; replicas?: number; nodeTimeoutMs?: number; tls?: RedisTls } = {},
): Promise<RunningCluster> {
  const { tls } = options;
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'portico-cluster-'));
  const nodes: RunningRedis[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const conf = join(dir, `nodes-${i}.conf`);
      // Not port + 10000 (the default bus port), which nothing reserved for us.
      const busPort = await freePort();
      nodes.push(
        await startRedis({
          dir: dir,
          ...(tls === undefined ? {} : { tls }),
          args: [
            ...(tls === undefined ? [] : ['--tls-cluster', 'yes', '--tls-replication', 'yes']),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            conf,
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            String(options.nodeTimeoutMs ?? 1_000),
            // A replica may take over however long ago it last heard from its master.
            '--cluster-replica-validity-factor',
            '0',
          ],
        }),
      );
    }
    const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
    // Bounded: nodes that cannot meet leave `--cluster create` waiting for them forever.
    await promisify(execFile)(
      REDIS_CLI,
      [
        ...(tls === undefined ? [] : ['--tls', '--cacert', tls.ca]),
        '--cluster',
        'create',
        ...seeds,
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    const dead = new Set<RunningRedis>();
    const cluster: RunningCluster = {
      nodes,
      seeds,
      async masterOf(slot) {
        for (const node of nodes) {
          if (dead.has(node)) continue;
          let slots: string;
          try {
            slots = await node.command('CLUSTER', 'NODES');
          } catch {
            dead.add(node);
            continue;
          }
          for (const line of slots.split('\n')) {
            const fields = line.trim().split(' ');
            if (!fields[2]?.includes('master') || fields[2].includes('fail')) continue;
            const port = Number(fields[1]?.split(':')[1]?.split('@')[0]);
            for (const range of fields.slice(8)) {
              const [from, to] = range.split('-').map(Number) as [number, number?];
              if (slot >= from && slot <= (to ?? from)) {
                const owner = nodes.find((n) => n.port === port);
                if (owner !== undefined) return owner;
              }
            }
          }
        }
        throw new Error(`no live master serves slot ${slot}`);
      },
      async waitHealthy(timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          let ok = true;
          for (const node of nodes) {
            if (node.pid === -1 || dead.has(node)) continue;
            try {
              const info = await node.command('CLUSTER', 'INFO');
              if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) ok = false;
            } catch {
              dead.add(node);
            }
          }
          if (ok) return;
          if (Date.now() > deadline) throw new Error('the cluster did not become healthy');
          await sleep(100);
        }
      },
      async stop() {
        await Promise.all(nodes.map((n) => n.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
    await cluster.waitHealthy();
    return cluster;
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface RunningSentinel {
  master: RunningRedis;
  replica: RunningRedis;
  /** `127.0.0.1:<port>` of each sentinel: `redis.sentinel.nodes`. */
  sentinels: string[];
  name: string;
  /** The master's port as the sentinels name it now. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * One master, one replica and three sentinels (quorum 2) on loopback, with a small
 * `down-after-milliseconds` so a dead master is replaced within seconds. With `tls`, the
 * servers and the sentinels serve TLS only and speak it to each other (`tls-replication`).
 */
export async function startRedisSentinel(
  options: { name?: string; tls?: RedisTls } = {},
): Promise<RunningSentinel> {
  const { name = 'mymaster', tls } = options;
  const dir = mkdtempSync(join(tmpdir(), 'portico-sentinel-'));
  const viaTls = tls === undefined ? {} : { tls };
  const tlsArgs = tls === undefined ? [] : ['--tls-replication', 'yes'];
  const master = await startRedis({ ...viaTls, args: tlsArgs });
  const replica = await startRedis({
    ...viaTls,
    args: [...tlsArgs, '--replicaof', '127.0.0.1', String(master.port)],
  });
  const sentinels: RunningRedis[] = [];
  const stopAll = async () => {
    await Promise.all([master.stop(), replica.stop(), ...sentinels.map((s) => s.stop())]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(async () => (await replica.command('INFO', 'replication')).includes('master_link_status:up'));
    for (let i = 0; i < 3; i++) {
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(await startRedis({ dir, ...viaTls, args: ['--sentinel', ...tlsArgs], confFile: conf }));
    }
    // Each sentinel must know the other two and the replica before a failover can be agreed.
    await until(async () => {
      for (const sentinel of sentinels) {
        const info = await sentinel.command('INFO', 'sentinel');
        if (!/sentinels=3/.test(info) || !/slaves=1/.test(info)) return false;
      }
      return true;
    }, 20_000);
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    master,
    replica,
    sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`),
    name,
    async masterPort() {
      for (const sentinel of sentinels) {
        try {
          const reply = await sentinel.command('SENTINEL', 'get-master-addr-by-name', name);
          const port = reply.split('\r\n')[4];
          if (port !== undefined) return Number(port);
        } catch {
          // try the next one
        }
      }
      throw new Error('no sentinel answered');
    },
    stop: stopAll,
  };
}

/** Polls `check` every 100 ms until it is true. */
async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for redis');
    await sleep(100);
  }
}

const encode = (args: string[]) =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/**
 * Minimal RESP: enough for PING, DBSIZE, TTL, KEYS, INFO, FLUSHALL in tests. With a
 * password, AUTH goes first on the same connection and its `+OK` is not part of the reply.
 */
function send(port: number, args: string[], access: Access = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const { password, username, ca } = access;
    const socket =
      ca === undefined
        ? new Socket()
        : tlsConnect({
            host: '127.0.0.1',
            port,
            ca,
            servername: 'localhost',
            checkServerIdentity: () => undefined,
          });
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
    const auth =
      password === undefined
        ? ''
        : encode(username === undefined ? ['AUTH', password] : ['AUTH', username, password]);
    const write = () => socket.write(auth + encode(args));
    if (ca === undefined) socket.connect(port, '127.0.0.1', write);
    else socket.once('secureConnect', write);
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
