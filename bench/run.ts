/*
 * `npm run bench`: Portico side by side with the upstream itself, a raw Node proxy, nginx and
 * fast-gateway (issue 6). Targets are listed in targets.ts; all proxy to one upstream process.
 *
 * Each round goes through the targets in the same order (A B C… A B C…, so drift hits all
 * alike); each target is started, warmed up for 1 s, measured at saturation (req/s, latency
 * percentiles, CPU µs/request, peak RSS per process, Redis work per request), measured at
 * fixed rates of 1,000 and 2,000 req/s if it is one users compare (p50/p99 and the p99
 * added over `direct`), and stopped. Then the report: tables on stdout,
 * bench/results/<date>.json (every raw run and the machine), bench/RESULTS.md (its analysis
 * section kept) and bench/results/chart.svg.
 *
 * Flags: --duration S (5), --rounds N (3), --only a,b (target names like `portico-full`, or
 * ids like `portico-full/1`), --ablation (bare, each middleware alone, full: ABLATION_IDS),
 * --scaling (SCALED gateways at 1, 2, 4, 8 workers), --cpus N (plan the core map of
 * core-map.ts for N cores: ≥ 8 puts client, upstream, Redis, OTLP endpoint and gateway on
 * their own cores with taskset; more than the machine has folds the plan onto its CPUs, to
 * test the layout), --smoke: every target once for 1 s, no warm-up, one low fixed
 * rate (summary.ts SMOKE) for 1 s; fails on errors, non-2xx answers or a target that did not
 * answer, never on latency. Smoke and --only runs write
 * their report to a temp dir: only a full run rewrites bench/RESULTS.md and bench/results/
 * (--ablation, --scaling and --cpus runs too go to a temp dir).
 * --cli DIR runs DIR's built CLI where this checkout's would run (to compare two older checkouts).
 * --baseline DIR adds portico-bare@base/1 and portico-full@base/1, run by DIR's built CLI (and,
 * with --ablation, each portico-only-*@base/1).
 * --report results/<date>.json rewrites RESULTS.md and the chart from a saved run (after a
 * change to the report's format) without measuring anything.
 * Fixed: 50 connections, pipelining 1. Loopback only.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { startRedis } from '../test/helpers/redis.js';
import { Affinities, availableCpus, Placement } from './affinity.js';
import { clusterWorkers, roleCounts, scalingCounts } from './core-map.js';
import { fixedRate } from './fixed-rate.js';
import { arg, inRounds, option } from './harness.js';
import { saturate, warmUp } from './load.js';
import { describeMachine } from './machine.js';
import { onExit, startNodeServer, stopProcess } from './processes.js';
import { calibrate, perRequest, redisCounters } from './redis-stats.js';
import { textReport, writeReport } from './report.js';
import {
  type BenchReport,
  type FixedRun,
  type SaturationRun,
  SMOKE as SMOKE_RUN,
  smokeProblems,
  type TargetResult,
} from './summary.js';
import {
  allTargets,
  CANDIDATE_ENV,
  pickTargets,
  type Running,
  type Shared,
  type TargetSpec,
} from './targets.js';
import { Progress } from './progress.js';
import { pollsDuring } from './dashboard-report.js';

const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));

// --report <json>: rewrite bench/RESULTS.md and the chart from a saved run, measuring nothing.
const saved = option('report');
if (saved !== undefined) {
  const report = JSON.parse(await readFile(saved, 'utf8')) as BenchReport;
  for (const t of report.targets) t.failures ??= []; // JSON from before failures were recorded
  process.stdout.write(textReport(report));
  const written = await writeReport(report, BENCH_DIR, join(BENCH_DIR, 'RESULTS.md'));
  console.error(`report: ${written.join(', ')}`);
  process.exit(0);
}

const SMOKE = process.argv.includes('--smoke');
const ABLATION_RUN = process.argv.includes('--ablation');
const SCALING_RUN = process.argv.includes('--scaling');

// Where every process runs (core-map.ts): the bench process itself is the load generator.
const cpusFlag = option('cpus');
if (process.argv.includes('--cpus') && !/^[1-9]\d*$/.test(cpusFlag ?? '')) {
  console.error(`--cpus: expected a number of cores (1 or more), got ${cpusFlag ?? 'nothing'}`);
  process.exit(2);
}
const { placement, notice: layoutNotice } = Placement.plan(
  cpusFlag === undefined ? undefined : Number(cpusFlag),
);
if (layoutNotice !== undefined) console.error(`notice: ${layoutNotice}`);
const layout = placement.layout;
const machineCores = availableCpus().length;
placement.pin(process.pid, 'client');
const CLUSTER = clusterWorkers(layout);
const options: BenchReport['options'] = {
  connections: 50,
  pipelining: 1,
  warmUpS: SMOKE ? 0 : 1,
  durationS: SMOKE ? SMOKE_RUN.durationS : arg('duration', 5),
  rounds: SMOKE ? 1 : arg('rounds', 3),
  // Below saturation: portico-full at 1 worker saturates near 3,000 req/s on the 2-core CI machine.
  rates: SMOKE ? [...SMOKE_RUN.rates] : [1000, 2000],
  fixedRateSettleS: SMOKE ? SMOKE_RUN.fixedRateSettleS : 0.5,
  clusterWorkers: CLUSTER,
  clientThreads: layout.clientThreads,
};
const startedAt = new Date();

// --baseline DIR: another checkout (e.g. a worktree of the previous main, built) whose CLI
// runs the portico-bare@base and portico-full@base targets beside this one's.
const baselineDir = option('baseline');
const baselineCli = baselineDir === undefined ? undefined : join(baselineDir, 'dist/src/cli.js');
if (baselineCli !== undefined && !existsSync(baselineCli)) {
  console.error(`--baseline: ${baselineCli} does not exist (run npm ci in ${baselineDir} first)`);
  process.exit(2);
}

// --cli DIR: DIR's built CLI stands in for this checkout's (see CANDIDATE_ENV).
const candidateDir = option('cli');
if (candidateDir !== undefined) {
  const candidate = join(candidateDir, 'dist/src/cli.js');
  if (!existsSync(candidate)) {
    console.error(`--cli: ${candidate} does not exist (run npm ci in ${candidateDir} first)`);
    process.exit(2);
  }
  process.env[CANDIDATE_ENV] = candidate;
}

// Which targets: all, or those --only names; the ones this machine cannot run are skipped.
const scaling = scalingCounts(layout);
const all = allTargets({ cluster: CLUSTER, scaling, ...(baselineCli ? { baselineCli } : {}) });
const picked = pickTargets(all, {
  ...(option('only') !== undefined ? { only: option('only') } : {}),
  ablation: ABLATION_RUN,
  scaling: SCALING_RUN ? scaling : undefined,
});
if ('unknown' in picked) {
  console.error(`unknown target(s) ${picked.unknown.join(', ')}; known: ${all.map((t) => t.id).join(', ')}`);
  process.exit(2);
}
const { selected, subset } = picked;
const results: TargetResult[] = selected.map((t) => {
  const skipped = t.skip();
  if (skipped !== undefined) console.error(`notice: skipping ${t.label}: ${skipped}`);
  return {
    id: t.id,
    name: t.name,
    label: t.label,
    workers: t.workers,
    ...(skipped !== undefined ? { skipped } : {}),
    failures: [],
    saturation: [],
    fixedRate: [],
  };
});
const resultOf = (t: TargetSpec) => results.find((r) => r.id === t.id) as TargetResult;
const active = selected.filter((t) => resultOf(t).skipped === undefined);
const fixedTargets = active.filter((t) => t.fixedRate);

// One step per measurement, in the order they run, with its estimated seconds (a target's
// start and stop are counted in its saturation step).
const steps = active.flatMap((t) => [
  1.5 + options.warmUpS + options.durationS,
  ...(t.fixedRate ? options.rates.map(() => options.durationS + 0.3) : []),
]);
const progress = new Progress(Array.from({ length: options.rounds }, () => steps).flat());
console.error(
  `bench${SMOKE ? ' --smoke' : ''}: ${active.length} targets × ${options.rounds} round(s) at saturation, ` +
    `${fixedTargets.length} of them also at ${options.rates.join(' and ')} req/s; ETA ${progress.eta()}`,
);

// What the targets share: the upstream, Redis and an OTLP endpoint, each its own process.
const script = (name: string) => fileURLToPath(new URL(`./servers/${name}.js`, import.meta.url));
const upstreamWorkers = layout.kind === 'separate' ? roleCounts(layout.cores).upstream : 1;
const upstream = await startNodeServer(
  script('upstream'),
  { WORKERS: String(upstreamWorkers) },
  placement.cpusOf('upstream'),
);
const redis = active.some((t) => t.redis) ? await startRedis() : undefined;
onExit(() => redis?.kill('SIGKILL'));
// Started by a test helper, so pinned once it runs (every thread of it).
if (redis) placement.pin(redis.pid, 'redis');
const otlp = active.some((t) => t.tracing)
  ? await startNodeServer(script('otlp-sink'), {}, placement.cpusOf('otlp'))
  : undefined;
const secret = 'bench-secret-bench-secret-bench-secret-0123';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const sign = (alg: string, key: Parameters<SignJWT['sign']>[0]) =>
  new SignJWT({ sub: 'bench-user' }).setProtectedHeader({ alg }).setExpirationTime('2h').sign(key);
const shared: Shared = {
  upstream: { port: upstream.port, ports: upstream.ports, pid: upstream.proc.pid as number },
  ...(redis ? { redisUrl: redis.url } : {}),
  ...(otlp ? { otlpEndpoint: `127.0.0.1:${otlp.port}` } : {}),
  secret,
  publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  tokens: {
    hs256: await sign('HS256', new TextEncoder().encode(secret)),
    rs256: await sign('RS256', privateKey),
  },
  ...(placement.cpusOf('gateway') ? { gatewayCpus: placement.cpusOf('gateway') } : {}),
};
// What the kernel applies (Cpus_allowed_list) to each role's processes, for the report.
const observed = new Affinities();
observed.record('client', [process.pid]);
observed.record('upstream', [shared.upstream.pid]);
if (redis) observed.record('redis', [redis.pid]);
if (otlp) observed.record('otlp', [otlp.proc.pid as number]);
/** Process groups whose CPU is recorded beside the target's. */
const others = {
  upstream: [shared.upstream.pid],
  ...(redis ? { redis: [redis.pid] } : {}),
  ...(otlp ? { otlp: [otlp.proc.pid as number] } : {}),
};
const redisOverhead = redis ? await calibrate(redis) : undefined;
let tracedRequests = 0;
type Measured = { saturation: SaturationRun; fixed: FixedRun[] };

/*
 * A target runs only while it is measured: started, warmed up, measured at saturation and at
 * the fixed rates, stopped. Kept running side by side, idle gateways would take a share of
 * the two cores (an idle Portico instance uses 1–3 % of a core) and a traced one would still
 * be exporting spans while the next target is measured.
 */
async function measure(t: TargetSpec, round: number): Promise<Measured | undefined> {
  const lap = `round ${round}/${options.rounds} · ${t.label}`;
  progress.step(`${lap} · ${options.durationS} s…`);
  let target: Running | undefined;
  try {
    target = await t.start(shared);
    if (t.id !== 'direct') observed.record('gateway', target.pids);
    const client = { threads: options.clientThreads };
    const warm = options.warmUpS > 0 ? await warmUp(target, options.connections, client) : 0;
    const before = t.redis && redis ? await redisCounters(redis) : undefined;
    // Issue 18: the browser watching the dashboard is recorded beside the target, not in it.
    const watcher = target.watcher;
    const groups = watcher ? { ...others, watcher: [watcher.pid] } : others;
    const pollsBefore = watcher?.polls();
    const run = await saturate(
      target,
      { connections: options.connections, duration: options.durationS, others: groups },
      client,
    );
    const polls = watcher && pollsBefore ? pollsDuring(pollsBefore, watcher.polls()) : undefined;
    if (t.tracing) tracedRequests += warm + run.total;
    const saturation: SaturationRun = {
      round,
      ...run,
      ...(before === undefined || redis === undefined || redisOverhead === undefined
        ? {}
        : { redis: perRequest(before, await redisCounters(redis), run.total, redisOverhead) }),
      ...(polls ? { dashboardPolls: polls } : {}),
    };
    const fixed: FixedRun[] = [];
    for (const rate of t.fixedRate ? options.rates : []) {
      progress.step(`${lap} at ${rate} req/s · ${options.durationS} s…`);
      const settle = options.fixedRateSettleS;
      const result = await fixedRate(target, { rate, duration: options.durationS, settle, others: groups });
      if (t.tracing) tracedRequests += result.sent;
      fixed.push({ round, ...result });
    }
    return { saturation, fixed };
  } catch (error) {
    // One target failing (a start timeout on a busy machine) must not lose the whole run.
    const failure = `round ${round}: ${(error as Error).message}`;
    console.error(`failed: ${t.label}: ${failure}`);
    resultOf(t).failures.push(failure);
    return undefined;
  } finally {
    // Stopping flushes a traced gateway's last spans.
    await target?.stop();
  }
}

const byId = new Map(active.map((t) => [t.id, t]));
const runs = await inRounds(
  active.map((t) => t.id),
  options.rounds,
  (id, round) => measure(byId.get(id) as TargetSpec, round),
);
for (const result of results) {
  const measured = (runs[result.id] ?? []).filter((r) => r !== undefined);
  result.saturation = measured.map((r) => r.saturation);
  result.fixedRate = measured.flatMap((r) => r.fixed);
}

const spans = otlp ? await spanCount(otlp.proc) : undefined;
await Promise.all([stopProcess(upstream.proc), otlp && stopProcess(otlp.proc), redis?.stop()]);

const report: BenchReport = {
  date: startedAt.toISOString(),
  elapsedS: (Date.now() - startedAt.getTime()) / 1000,
  smoke: SMOKE,
  machine: describeMachine(machineCores),
  options,
  layout: { ...layout, observed: observed.lists() },
  ...(spans !== undefined ? { spans: { received: spans, tracedRequests } } : {}),
  targets: results,
};
process.stdout.write(`\n${textReport(report)}\n`);
const official = !SMOKE && !subset && cpusFlag === undefined;
const dir = official
  ? BENCH_DIR
  : await mkdtemp(join(tmpdir(), `portico-bench-${SMOKE ? 'smoke' : 'only'}-`));
const written = await writeReport(report, dir, join(BENCH_DIR, 'RESULTS.md'));
console.error(`report: ${written.join(', ')}`);

if (SMOKE) {
  const problems = smokeProblems(report);
  for (const problem of problems) console.error(`smoke: ${problem}`);
  if (problems.length > 0) process.exit(1);
  console.error(`smoke ok: ${active.length} targets answered, only 2xx, in ${Math.round(report.elapsedS)} s`);
}
process.exit(0);

async function spanCount(proc: NonNullable<typeof otlp>['proc']): Promise<number> {
  proc.channel?.ref();
  const reply = new Promise<number>((resolve) => {
    proc.once('message', (message: { spans: number }) => resolve(message.spans));
    setTimeout(() => resolve(-1), 5_000).unref();
  });
  proc.send('count');
  return reply;
}
