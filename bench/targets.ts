/*
 * The targets of `npm run bench`, as data. Every target proxies GET /bench to the same
 * upstream process (except `direct`, which is that upstream), and every request carries the
 * same `Authorization: Bearer` header (an RS256 token for portico-full-rs256), so targets
 * differ only in what they do with it. Each gateway runs with 1 worker and with the cluster
 * default (one per gateway core); the scaling table's gateways also at 1, 2, 4 and 8 workers
 * (as many as the gateway has cores for), the ablation's one-middleware routes at 1 worker.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/net.js';
import { chromiumMissing, type Watcher, watchDashboard } from './dashboard-watcher.js';
import { CLI, startGateway, stopGateways } from './harness.js';
import { findNginx, startNginx } from './nginx.js';
import { startNodeServer, stopProcess } from './processes.js';
import { benchTls, gatewayTlsProblem, serverTls } from './tls.js';

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
  /** The gateway's CPUs when processes are pinned (core-map.ts), else undefined. */
  gatewayCpus?: readonly number[];
}

export interface Running {
  /** Load is spread over these (one per instance). */
  urls: string[];
  /** `h2`: HTTP/2 over TLS; else HTTP/1.1 (over TLS for https URLs). */
  protocol?: 'h1' | 'h2';
  /** PEM of the CA of a TLS target's certificate. */
  ca?: string;
  /** Root PIDs: their process trees are the target's CPU and memory. */
  pids: number[];
  headers: Record<string, string>;
  /** Issue 18: a browser with the dashboard open, whose CPU is not the target's. */
  watcher?: Watcher;
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
  const { proc, port } = await startNodeServer(
    script(name),
    { UPSTREAM_PORT: String(s.upstream.port), ...env },
    s.gatewayCpus,
  );
  return onePort(s, port, proc.pid as number, () => stopProcess(proc));
}

const CHAIN = ['tracing', 'auth', 'ratelimit', 'logging', 'metrics'];

interface PorticoSetup {
  /** The route's middleware: the full chain for portico-full, none for portico-bare. */
  middleware: readonly string[];
  /** The route sends to a pool of the upstream's three ports (least_request) instead of `target:`. */
  pool?: boolean;
  verifier?: 'hs256' | 'rs256';
  store?: 'redis' | 'embedded';
  instances?: number;
  /** `otel.sampling_ratio`; the SDK's default of 1 (every request traced) when unset. */
  sampling?: number;
  /** Another checkout's built CLI (`--baseline`); this checkout's when unset. */
  cli?: string;
  /** Issue 15: HTTPS (`h1`: HTTP/1.1 only; `h2`: with `http2: true`, loaded over HTTP/2). */
  tls?: 'h1' | 'h2';
  /** Issue 18: the dashboard page is open in a headless Chromium while the target runs. */
  watched?: boolean;
}

/** The config of a setup: only the sections its middleware uses (a one-middleware route pays for nothing else). */
async function porticoConfig(s: Shared, setup: PorticoSetup): Promise<Record<string, unknown>> {
  const target = `http://127.0.0.1:${s.upstream.port}`;
  // Every instance gets its own admin port; the default would collide. A baseline checkout
  // may predate `admin:`, and knows the port under its deprecated name only.
  const adminPort = await freePort();
  const admin = setup.cli === undefined ? { port: adminPort } : undefined;
  const metrics = { prometheus: setup.cli === undefined ? {} : { port: adminPort } };
  const tls = setup.tls === undefined ? undefined : benchTls();
  if (tls !== undefined && 'error' in tls) throw new Error(tls.error);
  const server = tls === undefined ? {} : { server: { tls: serverTls(tls.tls, setup.tls === 'h2') } };
  if (setup.pool) {
    const targets = s.upstream.ports.map((port) => ({ url: `http://127.0.0.1:${port}` }));
    return {
      upstreams: { bench: { targets, balance: 'least_request' } },
      routes: [{ path: '/bench', upstream: 'bench' }],
      admin,
      metrics,
    };
  }
  const uses = (name: string) => setup.middleware.includes(name);
  if (setup.middleware.length === 0)
    return { ...server, routes: [{ path: '/bench', target }], admin, metrics };
  return {
    ...server,
    routes: [{ path: '/bench', target, middleware: setup.middleware }],
    ...(uses('auth')
      ? { auth: setup.verifier === 'rs256' ? { public_key: s.publicPem } : { secret: s.secret } }
      : {}),
    // Open: every request passes, so the measured cost is the bucket check, not refusals.
    ...(uses('ratelimit') ? { rate_limit: { requests_per_second: 1e6, burst: 1e6 } } : {}),
    ...(uses('ratelimit') && setup.store === 'redis' ? { redis: { url: s.redisUrl } } : {}),
    admin,
    metrics,
    ...(uses('tracing')
      ? {
          otel: {
            endpoint: s.otlpEndpoint,
            ...(setup.sampling === undefined ? {} : { sampling_ratio: setup.sampling }),
          },
        }
      : {}),
  };
}

/**
 * `--cli DIR` (run.ts): the targets that would run this checkout's CLI run DIR's instead, so
 * two older checkouts can be compared with each other (with `--baseline`), both configured
 * as a baseline is.
 */
export const CANDIDATE_ENV = 'PORTICO_BENCH_CANDIDATE_CLI';

function portico(given: PorticoSetup) {
  return async (s: Shared, workers: number): Promise<Running> => {
    const candidate = process.env[CANDIDATE_ENV];
    const setup = given.cli === undefined && candidate !== undefined ? { ...given, cli: candidate } : given;
    const instances = await Promise.all(
      Array.from({ length: setup.instances ?? 1 }, async () => {
        const config = await porticoConfig(s, setup);
        const gateway = await startGateway(config, workers, setup.cli, s.gatewayCpus);
        return { ...gateway, adminPort: (config.admin as { port: number } | undefined)?.port };
      }),
    );
    const tls = setup.tls === undefined ? undefined : benchTls();
    const watcher = setup.watched ? await watch(instances) : undefined;
    return {
      urls: instances.map((g) => g.url),
      pids: instances.map((g) => g.proc.pid as number),
      headers: bearer(setup.verifier === 'rs256' ? s.tokens.rs256 : s.tokens.hs256),
      ...(setup.tls === 'h2' ? { protocol: 'h2' as const } : {}),
      ...(tls !== undefined && 'tls' in tls ? { ca: tls.tls.caPem } : {}),
      ...(watcher ? { watcher } : {}),
      stop: async () => {
        try {
          await watcher?.close();
        } finally {
          await stopGateways(instances);
        }
      },
    };
  };
}

/** The dashboard of the (one) instance, opened; the gateways are stopped if it does not open. */
async function watch(instances: { adminPort?: number | undefined; proc: ChildProcess }[]): Promise<Watcher> {
  const port = instances[0]?.adminPort;
  try {
    if (port === undefined) throw new Error('the dashboard target has no admin port');
    return await watchDashboard(`http://127.0.0.1:${port}/`);
  } catch (error) {
    await stopGateways(instances);
    throw error;
  }
}

interface Gateway {
  name: string;
  fixedRate?: boolean;
  redis?: boolean;
  tracing?: boolean;
  instances?: number;
  /** `one`: at 1 worker only (ablation, baseline); `scaled`: also at the scaling table's counts. */
  counts?: 'one' | 'scaled';
  skip?: () => string | undefined;
  start(s: Shared, workers: number): Promise<Running>;
}

const FULL = { middleware: CHAIN, verifier: 'hs256', store: 'redis' } as const;
const nginxMissing = () =>
  findNginx() ? undefined : 'nginx is not installed (Debian: apt-get install nginx)';
const tlsMissing = () => gatewayTlsProblem(CLI);

function nginx(tls?: 'h1' | 'h2') {
  return async (s: Shared, workers: number): Promise<Running> => {
    const port = await freePort();
    const certs = tls === undefined ? undefined : benchTls();
    if (certs !== undefined && 'error' in certs) throw new Error(certs.error);
    const nginxTls = certs === undefined ? undefined : { ...certs.tls, http2: tls === 'h2' };
    const running = await startNginx(port, s.upstream.port, workers, workers, {
      ...(nginxTls ? { tls: nginxTls } : {}),
      ...(s.gatewayCpus ? { cpus: s.gatewayCpus } : {}),
    });
    return {
      ...onePort(s, port, running.proc.pid as number, () => running.stop()),
      ...(nginxTls ? { urls: [`https://127.0.0.1:${port}/bench`], ca: nginxTls.caPem } : {}),
      ...(tls === 'h2' ? { protocol: 'h2' as const } : {}),
    };
  };
}

/**
 * Issue 17's ablation: bare (portico-bare/1) and full (portico-full/1) with, between them,
 * a route with each middleware alone, at 1 worker. `portico-only-<name>`; the table in
 * RESULTS.md is CPU µs/request over bare.
 */
export const ABLATION: readonly { name: string; setup: PorticoSetup; redis?: boolean; tracing?: boolean }[] =
  [
    { name: 'portico-only-tracing', setup: { middleware: ['tracing'] }, tracing: true },
    {
      name: 'portico-only-tracing-sampled',
      setup: { middleware: ['tracing'], sampling: 0.1 },
      tracing: true,
    },
    { name: 'portico-only-auth', setup: { middleware: ['auth'], verifier: 'hs256' } },
    {
      name: 'portico-only-ratelimit-redis',
      setup: { middleware: ['ratelimit'], store: 'redis' },
      redis: true,
    },
    { name: 'portico-only-ratelimit-embedded', setup: { middleware: ['ratelimit'], store: 'embedded' } },
    { name: 'portico-only-logging', setup: { middleware: ['logging'] } },
    { name: 'portico-only-metrics', setup: { middleware: ['metrics'] } },
  ];

function ablationGateways(): Gateway[] {
  return ABLATION.map(({ name, setup, redis, tracing }) => ({
    name,
    counts: 'one',
    ...(redis ? { redis } : {}),
    ...(tracing ? { tracing } : {}),
    start: portico(setup),
  }));
}

const GATEWAYS: Gateway[] = [
  { name: 'nginx', fixedRate: true, counts: 'scaled', skip: nginxMissing, start: nginx() },
  {
    name: 'fast-gateway',
    fixedRate: true,
    counts: 'scaled',
    start: (s, workers) => nodeServer(s, 'fast-gateway', { WORKERS: String(workers) }),
  },
  { name: 'portico-bare', fixedRate: true, counts: 'scaled', start: portico({ middleware: [] }) },
  // Issue 18: portico-bare, same config (the admin listener is on in every Portico target),
  // with the dashboard page open and polling through the measured window.
  {
    name: 'portico-bare-dashboard',
    skip: chromiumMissing,
    start: portico({ middleware: [], watched: true }),
  },
  // portico-bare balancing over three endpoints: what a pool costs per request (issue 13).
  { name: 'portico-pool', start: portico({ middleware: [], pool: true }) },
  {
    name: 'portico-full',
    fixedRate: true,
    redis: true,
    tracing: true,
    counts: 'scaled',
    start: portico(FULL),
  },
  {
    // The full chain with 10 % of new traces sampled: what tracing costs at a common
    // production setting. The issue's targets are judged on portico-full (100 %).
    name: 'portico-full-sampled',
    fixedRate: true,
    redis: true,
    tracing: true,
    start: portico({ ...FULL, sampling: 0.1 }),
  },
  {
    name: 'portico-full-rs256',
    redis: true,
    tracing: true,
    start: portico({ ...FULL, verifier: 'rs256' }),
  },
  {
    name: 'portico-embedded-store',
    tracing: true,
    start: portico({ ...FULL, store: 'embedded' }),
  },
  {
    name: 'portico-2-instances',
    redis: true,
    tracing: true,
    instances: 2,
    start: portico({ ...FULL, instances: 2 }),
  },
  ...ablationGateways(),
  // Issue 15: the edge over TLS, next to nginx with the same certificate. h2 streams are
  // loaded by h2-client.ts; upstream exchanges stay HTTP/1.1 in both.
  { name: 'portico-bare-tls', skip: tlsMissing, start: portico({ middleware: [], tls: 'h1' }) },
  { name: 'portico-bare-h2', skip: tlsMissing, start: portico({ middleware: [], tls: 'h2' }) },
  { name: 'nginx-tls', skip: () => nginxMissing() ?? benchTlsProblem(), start: nginx('h1') },
  { name: 'nginx-h2', skip: () => nginxMissing() ?? benchTlsProblem(), start: nginx('h2') },
];

function benchTlsProblem(): string | undefined {
  const certs = benchTls();
  return 'error' in certs ? certs.error : undefined;
}

/** What `--ablation` runs: the upstream (for the fixed-rate p99), bare, each middleware alone, full. */
export const ABLATION_IDS: readonly string[] = [
  'direct',
  'portico-bare/1',
  ...ABLATION.map((a) => `${a.name}/1`),
  'portico-full/1',
  'portico-full-sampled/1',
];

/** The gateways of the scaling table (`--scaling`). */
export const SCALED: readonly string[] = ['portico-bare', 'portico-full', 'fast-gateway', 'nginx'];

/**
 * `portico-bare@base`, `portico-full@base` and `portico-only-<name>@base`: the same setups run
 * by another checkout's CLI (`--baseline DIR`), so a change is measured against the previous
 * main in one run (pick the ablation ones with --only).
 */
function baselineGateways(cli: string): Gateway[] {
  return [
    { name: 'portico-bare@base', counts: 'one', start: portico({ middleware: [], cli }) },
    {
      name: 'portico-full@base',
      redis: true,
      tracing: true,
      counts: 'one',
      start: portico({ ...FULL, cli }),
    },
    ...ABLATION.map(({ name, setup, redis, tracing }) => ({
      name: `${name}@base`,
      counts: 'one' as const,
      ...(redis ? { redis } : {}),
      ...(tracing ? { tracing } : {}),
      start: portico({ ...setup, cli }),
    })),
  ];
}

export interface TargetCounts {
  /** The cluster default: one worker per gateway core. */
  cluster: number;
  /** The scaling table's worker counts (core-map.ts scalingCounts). */
  scaling: readonly number[];
  /** Another checkout's CLI: adds the @base targets. */
  baselineCli?: string;
}

/**
 * Every target: gateways at 1 worker and at the cluster default, the scaling table's also at
 * its counts, the ablation's and the baseline's at 1 worker only.
 */
export function allTargets({ cluster, scaling, baselineCli }: TargetCounts): TargetSpec[] {
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
  const usual = cluster > 1 ? [1, cluster] : [1];
  const countsOf = (g: Gateway) =>
    g.counts === 'one'
      ? [1]
      : g.counts === 'scaled'
        ? [...new Set([...usual, ...scaling])].sort((a, b) => a - b)
        : usual;
  const gateways = baselineCli ? [...GATEWAYS, ...baselineGateways(baselineCli)] : GATEWAYS;
  const variants = gateways.flatMap((g) =>
    countsOf(g).map((workers): TargetSpec => {
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

/**
 * The targets a run measures: every one, or those `--only` names (ids like `portico-full/1`
 * or names like `portico-full`) plus `--ablation`'s and `--scaling`'s.
 */
export function pickTargets(
  all: readonly TargetSpec[],
  flags: { only?: string; ablation?: boolean; scaling?: readonly number[] | undefined },
): { selected: TargetSpec[]; subset: boolean } | { unknown: string[] } {
  const named = flags.only
    ?.split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  // The ablation's @base twins run when asked for (--ablation with --baseline, or by name).
  const baseAblation = (t: TargetSpec) => t.name.startsWith('portico-only-') && t.name.endsWith('@base');
  if (named === undefined && !flags.ablation && flags.scaling === undefined) {
    return { selected: all.filter((t) => !baseAblation(t)), subset: false };
  }
  const wanted = [
    ...(named ?? []),
    ...(flags.ablation ? ABLATION_IDS : []),
    ...(flags.scaling ? SCALED.flatMap((name) => (flags.scaling ?? []).map((n) => `${name}/${n}`)) : []),
  ];
  const unknown = wanted.filter((name) => !all.some((t) => t.id === name || t.name === name));
  if (unknown.length > 0) return { unknown };
  if (flags.ablation) wanted.push(...all.filter(baseAblation).map((t) => t.id));
  return { selected: all.filter((t) => wanted.includes(t.id) || wanted.includes(t.name)), subset: true };
}
