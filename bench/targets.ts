/*
 * The targets of `npm run bench`, as data. Every target proxies GET /bench to the same
 * upstream process (except `direct`, which is that upstream), and every request carries the
 * same `Authorization: Bearer` header (an RS256 token for portico-full-rs256), so targets
 * differ only in what they do with it. Each gateway runs with 1 worker and with the cluster
 * default (one per CPU).
 */
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/net.js';
import { startGateway, stopGateways } from './harness.js';
import { findNginx, startNginx } from './nginx.js';
import { startNodeServer, stopProcess } from './processes.js';

/** What the targets share, started once by the suite. */
export interface Shared {
  /** `port` is what targets proxy to; `ports` (it first) are its endpoints for portico-pool. */
  upstream: { port: number; ports: number[]; pid: number };
  /** Unset when no selected target uses Redis. */
  redisUrl?: string;
  /** Unset when no selected target traces. */
  otlpEndpoint?: string;
  secret: string;
  publicPem: string;
  tokens: { hs256: string; rs256: string };
}

export interface Running {
  /** Load is spread over these (one per instance). */
  urls: string[];
  /** Root PIDs: their process trees are the target's CPU and memory. */
  pids: number[];
  headers: Record<string, string>;
  stop(): Promise<void>;
}

export interface TargetSpec {
  /** Unique, for --only and the JSON: `direct`, `nginx/1`, `portico-full/2`. */
  id: string;
  /** The kind, shared by its worker variants: `portico-full`. */
  name: string;
  /** For tables and progress: `portico-full (2 workers)`. */
  label: string;
  /** Serving processes per instance. */
  workers: number;
  redis: boolean;
  tracing: boolean;
  /** Also measured at fixed rates. */
  fixedRate: boolean;
  /** Why it cannot run on this machine, if it cannot. */
  skip(): string | undefined;
  start(shared: Shared): Promise<Running>;
}

const script = (name: string) => fileURLToPath(new URL(`./servers/${name}.js`, import.meta.url));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const neverSkipped = () => undefined;

/** A target served on one port by one root process (with or without workers below it). */
const onePort = (s: Shared, port: number, pid: number, stop: () => Promise<void>): Running => ({
  urls: [`http://127.0.0.1:${port}/bench`],
  pids: [pid],
  headers: bearer(s.tokens.hs256),
  stop,
});

/** A bench server process (bench/servers/<name>.js) proxying to the upstream. */
async function nodeServer(s: Shared, name: string, env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const { proc, port } = await startNodeServer(script(name), {
    UPSTREAM_PORT: String(s.upstream.port),
    ...env,
  });
  return onePort(s, port, proc.pid as number, () => stopProcess(proc));
}

const CHAIN = ['tracing', 'auth', 'ratelimit', 'logging', 'metrics'];

interface PorticoSetup {
  /** The full chain, or a route with no middleware. */
  chain: boolean;
  /** The route sends to a pool of the upstream's three ports (least_request) instead of `target:`. */
  pool?: boolean;
  verifier?: 'hs256' | 'rs256';
  store?: 'redis' | 'embedded';
  instances?: number;
  /** `otel.sampling_ratio`; the SDK's default of 1 (every request traced) when unset. */
  sampling?: number;
  /** Another checkout's built CLI (`--baseline`); this checkout's when unset. */
  cli?: string;
}

async function porticoConfig(s: Shared, setup: PorticoSetup): Promise<Record<string, unknown>> {
  const target = `http://127.0.0.1:${s.upstream.port}`;
  // Every instance gets its own admin port; the default would collide. A baseline checkout
  // may predate `admin:`, and knows the port under its deprecated name only.
  const adminPort = await freePort();
  const admin = setup.cli === undefined ? { port: adminPort } : undefined;
  const metrics = { prometheus: setup.cli === undefined ? {} : { port: adminPort } };
  if (setup.pool) {
    const targets = s.upstream.ports.map((port) => ({ url: `http://127.0.0.1:${port}` }));
    return {
      upstreams: { bench: { targets, balance: 'least_request' } },
      routes: [{ path: '/bench', upstream: 'bench' }],
      admin,
      metrics,
    };
  }
  if (!setup.chain) return { routes: [{ path: '/bench', target }], admin, metrics };
  return {
    routes: [{ path: '/bench', target, middleware: CHAIN }],
    auth: setup.verifier === 'rs256' ? { public_key: s.publicPem } : { secret: s.secret },
    // Open: every request passes, so the measured cost is the bucket check, not refusals.
    rate_limit: { requests_per_second: 1e6, burst: 1e6 },
    ...(setup.store === 'redis' ? { redis: { url: s.redisUrl } } : {}),
    admin,
    metrics,
    otel: {
      endpoint: s.otlpEndpoint,
      ...(setup.sampling === undefined ? {} : { sampling_ratio: setup.sampling }),
    },
  };
}

function portico(setup: PorticoSetup) {
  return async (s: Shared, workers: number): Promise<Running> => {
    const instances = await Promise.all(
      Array.from({ length: setup.instances ?? 1 }, async () =>
        startGateway(await porticoConfig(s, setup), workers, setup.cli),
      ),
    );
    return {
      urls: instances.map((g) => g.url),
      pids: instances.map((g) => g.proc.pid as number),
      headers: bearer(setup.verifier === 'rs256' ? s.tokens.rs256 : s.tokens.hs256),
      stop: () => stopGateways(instances),
    };
  };
}

interface Gateway {
  name: string;
  fixedRate?: boolean;
  redis?: boolean;
  tracing?: boolean;
  instances?: number;
  skip?: () => string | undefined;
  start(s: Shared, workers: number): Promise<Running>;
}

const GATEWAYS: Gateway[] = [
  {
    name: 'nginx',
    fixedRate: true,
    skip: () => (findNginx() ? undefined : 'nginx is not installed (Debian: apt-get install nginx)'),
    async start(s, workers) {
      const port = await freePort();
      const nginx = await startNginx(port, s.upstream.port, workers === 1 ? 1 : 'auto', workers);
      return onePort(s, port, nginx.proc.pid as number, () => nginx.stop());
    },
  },
  {
    name: 'fast-gateway',
    fixedRate: true,
    start: (s, workers) => nodeServer(s, 'fast-gateway', { WORKERS: String(workers) }),
  },
  { name: 'portico-bare', fixedRate: true, start: portico({ chain: false }) },
  // portico-bare balancing over three endpoints: what a pool costs per request (issue 13).
  { name: 'portico-pool', start: portico({ chain: false, pool: true }) },
  {
    name: 'portico-full',
    fixedRate: true,
    redis: true,
    tracing: true,
    start: portico({ chain: true, verifier: 'hs256', store: 'redis' }),
  },
  {
    // The full chain with 10 % of new traces sampled: what tracing costs at a common
    // production setting. The issue's targets are judged on portico-full (100 %).
    name: 'portico-full-sampled',
    fixedRate: true,
    redis: true,
    tracing: true,
    start: portico({ chain: true, verifier: 'hs256', store: 'redis', sampling: 0.1 }),
  },
  {
    name: 'portico-full-rs256',
    redis: true,
    tracing: true,
    start: portico({ chain: true, verifier: 'rs256', store: 'redis' }),
  },
  {
    name: 'portico-embedded-store',
    tracing: true,
    start: portico({ chain: true, verifier: 'hs256', store: 'embedded' }),
  },
  {
    name: 'portico-2-instances',
    redis: true,
    tracing: true,
    instances: 2,
    start: portico({ chain: true, verifier: 'hs256', store: 'redis', instances: 2 }),
  },
];

/**
 * `portico-bare@base` and `portico-full@base`: the same setups run by another checkout's CLI
 * (`--baseline DIR`), so a change is measured against the previous main in one run.
 */
function baselineGateways(cli: string): Gateway[] {
  return [
    { name: 'portico-bare@base', start: portico({ chain: false, cli }) },
    {
      name: 'portico-full@base',
      redis: true,
      tracing: true,
      start: portico({ chain: true, verifier: 'hs256', store: 'redis', cli }),
    },
  ];
}

/**
 * Every target, gateways at 1 worker and at `clusterWorkers` (the cluster default); with
 * `baselineCli`, the baseline's portico-bare and portico-full at 1 worker too.
 */
export function allTargets(clusterWorkers: number, baselineCli?: string): TargetSpec[] {
  const direct: TargetSpec = {
    id: 'direct',
    name: 'direct',
    label: 'direct (the upstream)',
    workers: 1,
    redis: false,
    tracing: false,
    fixedRate: true,
    skip: neverSkipped,
    // The suite's own upstream: stopped by the suite, last.
    start: (s) => Promise.resolve(onePort(s, s.upstream.port, s.upstream.pid, () => Promise.resolve())),
  };
  const nodeRaw: TargetSpec = {
    id: 'node-raw',
    name: 'node-raw',
    label: 'node-raw (1 process)',
    workers: 1,
    redis: false,
    tracing: false,
    fixedRate: true,
    skip: neverSkipped,
    start: (s) => nodeServer(s, 'node-raw'),
  };
  const counts = clusterWorkers > 1 ? [1, clusterWorkers] : [1];
  const gateways = baselineCli ? [...GATEWAYS, ...baselineGateways(baselineCli)] : GATEWAYS;
  const variants = gateways.flatMap((g) =>
    (g.name.endsWith('@base') ? [1] : counts).map((workers): TargetSpec => {
      const each = `${workers} worker${workers === 1 ? '' : 's'}`;
      return {
        id: `${g.name}/${workers}`,
        name: g.name,
        label: `${g.name} (${g.instances ? `${g.instances} × ${each}` : each})`,
        workers,
        redis: g.redis ?? false,
        tracing: g.tracing ?? false,
        fixedRate: g.fixedRate ?? false,
        skip: g.skip ?? neverSkipped,
        start: (s) => g.start(s, workers),
      };
    }),
  );
  return [direct, nodeRaw, ...variants];
}
