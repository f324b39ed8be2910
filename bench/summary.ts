/*
 * From raw runs to the figures the report shows: medians over rounds, ratios taken round by
 * round (A and B measured minutes apart drift together) and then their median, and the
 * issue's targets, each met or not.
 */
import type { FixedRateResult } from './fixed-rate.js';
import { median } from './harness.js';
import type { LoadResult } from './load.js';
import type { Layout, Role } from './core-map.js';
import type { Machine } from './machine.js';
import type { RedisPerRequest } from './redis-stats.js';
import type { PollCount } from './dashboard-watcher.js';

export interface SaturationRun extends LoadResult {
  round: number;
  /** Redis work per request, for targets that use it. */
  redis?: RedisPerRequest;
  /** Issue 18: the dashboard page's `/admin/*` requests during the measured window. */
  dashboardPolls?: PollCount;
}

export interface FixedRun extends FixedRateResult {
  round: number;
}

export interface TargetResult {
  id: string;
  name: string;
  label: string;
  workers: number;
  /** Why it did not run, if it did not. */
  skipped?: string;
  /** Rounds in which it failed to start or to be measured, and why. */
  failures: string[];
  saturation: SaturationRun[];
  fixedRate: FixedRun[];
}

export interface BenchReport {
  /** ISO time the run started. */
  date: string;
  /** Wall-clock seconds of the whole run. */
  elapsedS: number;
  smoke: boolean;
  machine: Machine;
  options: {
    connections: number;
    pipelining: 1;
    warmUpS: number;
    durationS: number;
    rounds: number;
    rates: number[];
    fixedRateSettleS: number;
    clusterWorkers: number;
    /** Load-generator threads (absent in runs from before issue 17: 1). */
    clientThreads?: number;
  };
  /** Where the processes ran (absent in runs from before issue 17: every process shared the cores). */
  layout?: Layout & { observed: Partial<Record<Role, string[]>> };
  /** Spans the OTLP endpoint received over the whole run (traced targets only). */
  spans?: { received: number; tracedRequests: number };
  targets: TargetResult[];
}

const ran = (t: TargetResult | undefined): t is TargetResult =>
  t !== undefined && t.skipped === undefined && t.saturation.length > 0;

/** The targets with at least one saturation run, in their order. */
export const measuredTargets = (report: BenchReport) => report.targets.filter(ran);

export const find = (report: BenchReport, id: string) => report.targets.find((t) => t.id === id);

/** Median over rounds of one figure of a target's saturation runs. */
export const med = (t: TargetResult, figure: (r: SaturationRun) => number) =>
  median(t.saturation.map(figure));

/** Median over the rounds both ran of figure(a) ÷ figure(b). */
export function ratio(
  a: TargetResult | undefined,
  b: TargetResult | undefined,
  figure: (r: SaturationRun) => number = (r) => r.rps,
): number | undefined {
  if (!ran(a) || !ran(b)) return undefined;
  const per = a.saturation.flatMap((ra) => {
    const rb = b.saturation.find((x) => x.round === ra.round);
    return rb && figure(rb) > 0 ? [figure(ra) / figure(rb)] : [];
  });
  return per.length > 0 ? median(per) : undefined;
}

/** A target's fixed-rate runs at `rate`. */
export const atRate = (t: TargetResult, rate: number) => t.fixedRate.filter((r) => r.rate === rate);

/** Median over rounds of latency(t) − latency(direct) at `rate` (p99 by default), in ms. */
export function addedLatency(
  t: TargetResult | undefined,
  direct: TargetResult | undefined,
  rate: number,
  percentile: 'p50' | 'p99' = 'p99',
) {
  if (!ran(t) || !ran(direct) || t === direct) return undefined;
  const base = atRate(direct, rate);
  const per = atRate(t, rate).flatMap((r) => {
    const d = base.find((x) => x.round === r.round);
    return d ? [r.latency[percentile] - d.latency[percentile]] : [];
  });
  return per.length > 0 ? median(per) : undefined;
}

/** Highest sampled RSS among processes of `role` over all runs of a target, in MB. */
export function peakRss(t: TargetResult, roles: readonly string[]): number | undefined {
  const peaks = t.saturation.flatMap((r) =>
    r.memory.filter((m) => roles.includes(m.role)).map((m) => m.peakRssMb),
  );
  return peaks.length > 0 ? Math.max(...peaks) : undefined;
}

export interface Criterion {
  what: string;
  /** The measured figure, formatted. */
  value: string;
  goal: string;
  met: boolean | undefined;
  note?: string;
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);

export function criteria(report: BenchReport): Criterion[] {
  const t = (id: string) => find(report, id);
  const cluster = report.options.clusterWorkers;
  const variants = cluster > 1 ? [1, cluster] : [1];
  const w = (n: number) => `${n} worker${n === 1 ? '' : 's'}`;
  const cpuNote = (a: string, b: string) => {
    const ta = t(a);
    const tb = t(b);
    if (!ran(ta) || !ran(tb)) return undefined;
    return `CPU µs/req ${fmt(
      med(ta, (r) => r.cpuUsPerReq),
      0,
    )} vs ${fmt(
      med(tb, (r) => r.cpuUsPerReq),
      0,
    )}`;
  };
  const atLeast = (what: string, a: string, b: string, goal: number): Criterion => {
    const value = ratio(t(a), t(b));
    return {
      what,
      value: value === undefined ? 'not measured' : `${fmt(value)} ×`,
      goal: `≥ ${fmt(goal)}`,
      met: value === undefined ? undefined : value >= goal,
      note: cpuNote(a, b),
    };
  };
  const list: Criterion[] = [
    atLeast('portico-bare ÷ node-raw throughput, 1 worker', 'portico-bare/1', 'node-raw', 0.9),
  ];
  for (const n of variants) {
    list.push(
      atLeast(
        `portico-full ÷ portico-bare throughput, ${w(n)}`,
        `portico-full/${n}`,
        `portico-bare/${n}`,
        0.75,
      ),
    );
  }
  for (const n of variants) {
    for (const p of ['portico-bare', 'portico-full']) {
      list.push(atLeast(`${p} ÷ fast-gateway throughput, ${w(n)}`, `${p}/${n}`, `fast-gateway/${n}`, 1));
    }
  }
  // Issue 13: balancing over a pool costs almost nothing (same-round ratio of CPU per request).
  for (const n of variants) {
    const value = ratio(t(`portico-pool/${n}`), t(`portico-bare/${n}`), (r) => r.cpuUsPerReq);
    list.push({
      what: `portico-pool ÷ portico-bare CPU µs/request, ${w(n)}`,
      value: value === undefined ? 'not measured' : `${fmt(value)} ×`,
      goal: '≤ 1.05',
      met: value === undefined ? undefined : value <= 1.05,
      note: cpuNote(`portico-pool/${n}`, `portico-bare/${n}`),
    });
  }
  for (const n of variants) {
    for (const rate of report.options.rates) {
      const added = addedLatency(t(`portico-full/${n}`), t('direct'), rate);
      list.push({
        what: `p99 added by portico-full over direct at ${rate} req/s, ${w(n)}`,
        value: added === undefined ? 'not measured' : `${fmt(added, 3)} ms`,
        goal: '< 1 ms',
        met: added === undefined ? undefined : added < 1,
      });
    }
  }
  const workers = report.targets
    .filter((x) => ran(x) && x.name.startsWith('portico'))
    .map((x) => ({ id: x.id, mb: peakRss(x, ['worker']) ?? 0 }))
    .sort((a, b) => b.mb - a.mb);
  const worst = workers[0];
  list.push({
    what: 'peak RSS per Portico worker under load',
    value: worst === undefined ? 'not measured' : `${fmt(worst.mb, 1)} MB`,
    goal: '< 120 MB',
    met: worst === undefined ? undefined : worst.mb < 120,
    ...(worst ? { note: `highest: ${worst.id}` } : {}),
  });
  return list;
}

/**
 * The smoke run's fixed rate and length. The smoke proves the harness, not the machine: a
 * loaded CI machine must hold this rate through portico-full at 1 worker, so a slow machine
 * shows up as latency (never judged) and only a broken target as errors.
 */
export const SMOKE = { durationS: 1, rates: [100], fixedRateSettleS: 0.25 } as const;

/** What makes a smoke run fail: a target that failed, did not answer, or answered with errors. */
export function smokeProblems(report: BenchReport): string[] {
  const problems: string[] = [];
  for (const t of report.targets.filter((x) => x.skipped === undefined)) {
    for (const failure of t.failures) problems.push(`${t.label}: ${failure}`);
    const runs = [
      ...t.saturation.map((r) => ({ ...r, kind: 'saturation' })),
      ...t.fixedRate.map((r) => ({ ...r, kind: `${r.rate} req/s` })),
    ];
    if (t.saturation.length === 0) problems.push(`${t.label}: no saturation run`);
    for (const r of runs) {
      if (r.total === 0) problems.push(`${t.label} (${r.kind}): no requests completed`);
      if (r.non2xx > 0 || r.errors > 0)
        problems.push(`${t.label} (${r.kind}): ${r.non2xx} non-2xx, ${r.errors} errors`);
    }
    for (const r of t.saturation.filter((x) => (x.dashboardPolls?.failed ?? 0) > 0))
      problems.push(`${t.label}: ${r.dashboardPolls?.failed} of the dashboard page's requests failed`);
  }
  if (report.spans && report.spans.tracedRequests > 0 && report.spans.received <= 0) {
    problems.push(`no spans reached the OTLP endpoint for ${report.spans.tracedRequests} traced requests`);
  }
  return problems;
}

/** Median over the rounds both ran of figure(a) − figure(b). */
export function difference(
  a: TargetResult | undefined,
  b: TargetResult | undefined,
  figure: (r: SaturationRun) => number,
): number | undefined {
  if (!ran(a) || !ran(b)) return undefined;
  const per = a.saturation.flatMap((ra) => {
    const rb = b.saturation.find((x) => x.round === ra.round);
    return rb ? [figure(ra) - figure(rb)] : [];
  });
  return per.length > 0 ? median(per) : undefined;
}

export interface AblationRow {
  id: string;
  /** What the route runs. */
  what: string;
  measured: boolean;
  rps?: number;
  cpuUsPerReq?: number;
  /** CPU µs/request over portico-bare/1, round by round. */
  addedUs?: number;
  /** CPU µs/request ÷ portico-bare/1's, round by round. */
  timesBare?: number;
  peakRssWorkerMb?: number;
}

/** Issue 17's per-middleware cost table: bare, each middleware alone, full (1 worker each). */
export const ABLATION_ROWS: readonly [string, string][] = [
  ['portico-bare/1', 'bare (no middleware)'],
  ['portico-only-tracing/1', 'tracing (100 % sampled)'],
  ['portico-only-tracing-sampled/1', 'tracing, sampling 0.1'],
  ['portico-only-auth/1', 'auth (HS256, token cache)'],
  ['portico-only-ratelimit-redis/1', 'ratelimit (Redis store)'],
  ['portico-only-ratelimit-embedded/1', 'ratelimit (embedded store)'],
  ['portico-only-logging/1', 'logging'],
  ['portico-only-metrics/1', 'metrics'],
  ['portico-full/1', 'full chain (100 % sampled)'],
  ['portico-full-sampled/1', 'full chain, sampling 0.1'],
];

export function ablation(report: BenchReport): AblationRow[] {
  const bare = find(report, 'portico-bare/1');
  const cpu = (r: SaturationRun) => r.cpuUsPerReq;
  return ABLATION_ROWS.map(([id, what]) => {
    const t = find(report, id);
    if (!ran(t)) return { id, what, measured: false };
    const row: AblationRow = {
      id,
      what,
      measured: true,
      rps: med(t, (r) => r.rps),
      cpuUsPerReq: med(t, cpu),
    };
    const added = difference(t, bare, cpu);
    const times = ratio(t, bare, cpu);
    const rss = peakRss(t, ['worker']);
    if (added !== undefined) row.addedUs = added;
    if (times !== undefined) row.timesBare = times;
    if (rss !== undefined) row.peakRssWorkerMb = rss;
    return row;
  });
}

export interface ScalingRow {
  name: string;
  /** Per worker count: median req/s and its ratio to the same target at 1 worker (undefined: not measured). */
  cells: { workers: number; rps?: number; speedUp?: number; cpuUsPerReq?: number }[];
}

/** The scaling table: each SCALED gateway at each worker count that ran. */
export function scaling(
  report: BenchReport,
  names: readonly string[],
  counts: readonly number[],
): ScalingRow[] {
  return names.map((name) => {
    const one = find(report, `${name}/1`);
    return {
      name,
      cells: counts.map((workers) => {
        const t = find(report, `${name}/${workers}`);
        if (!ran(t)) return { workers };
        const speedUp = ratio(t, one);
        return {
          workers,
          rps: med(t, (r) => r.rps),
          cpuUsPerReq: med(t, (r) => r.cpuUsPerReq),
          ...(speedUp === undefined ? {} : { speedUp }),
        };
      }),
    };
  });
}

/** Issue 17's targets, each met or not. */
export function criteria17(report: BenchReport): Criterion[] {
  const t = (id: string) => find(report, id);
  const cpu = (r: SaturationRun) => r.cpuUsPerReq;
  const judged = (
    what: string,
    value: number | undefined,
    goal: string,
    met: (v: number) => boolean,
    unit = ' ×',
    digits = 2,
    note?: string,
  ): Criterion => ({
    what,
    value: value === undefined ? 'not measured' : `${fmt(value, digits)}${unit}`,
    goal,
    met: value === undefined ? undefined : met(value),
    ...(note ? { note } : {}),
  });
  const bare = t('portico-bare/1');
  const added = (id: string) => {
    const d = difference(t(id), bare, cpu);
    return d === undefined ? undefined : `${d >= 0 ? '+' : ''}${fmt(d, 0)} µs/request over bare`;
  };
  const full = report.targets.filter((x) => ran(x) && x.name === 'portico-full');
  const fullRss = full.flatMap((x) => {
    const mb = peakRss(x, ['worker']);
    return mb === undefined ? [] : [mb];
  });
  const separate = report.layout?.kind === 'separate';
  return [
    judged(
      'portico-full ÷ portico-bare CPU µs/request, 1 worker',
      ratio(t('portico-full/1'), bare, cpu),
      '≤ 1.40',
      (v) => v <= 1.4,
    ),
    judged(
      'portico-full ÷ portico-bare throughput, 1 worker',
      ratio(t('portico-full/1'), bare),
      '≥ 0.70',
      (v) => v >= 0.7,
    ),
    judged(
      'tracing alone ÷ portico-bare CPU µs/request (100 % sampled)',
      ratio(t('portico-only-tracing/1'), bare, cpu),
      '≤ 1.20 (≤ 12 µs where bare costs ~60)',
      (v) => v <= 1.2,
      ' ×',
      2,
      added('portico-only-tracing/1'),
    ),
    judged(
      'logging alone ÷ portico-bare CPU µs/request',
      ratio(t('portico-only-logging/1'), bare, cpu),
      '≤ 1.08 (≤ 5 µs where bare costs ~60)',
      (v) => v <= 1.08,
      ' ×',
      2,
      added('portico-only-logging/1'),
    ),
    judged(
      'portico-bare ÷ node-raw throughput, 1 worker',
      ratio(bare, t('node-raw')),
      '≥ 0.95',
      (v) => v >= 0.95,
    ),
    judged(
      'node-raw ÷ portico-bare CPU µs/request (bare as efficient as node-raw), 1 worker',
      ratio(t('node-raw'), bare, cpu),
      '≥ 0.95',
      (v) => v >= 0.95,
    ),
    judged(
      'peak RSS per worker under full-chain saturation (portico-full)',
      fullRss.length > 0 ? Math.max(...fullRss) : undefined,
      '≤ 110 MB',
      (v) => v <= 110,
      ' MB',
      1,
    ),
    {
      // Only judged with the load generator on its own cores; on shared cores it is shown.
      ...judged(
        'p99 added by portico-full over direct at 2000 req/s, 1 worker',
        addedLatency(t('portico-full/1'), t('direct'), 2000),
        '≤ 1 ms, load generator on its own cores',
        (v) => v <= 1,
        ' ms',
        3,
        separate
          ? 'load generator on its own cores'
          : 'not judged: the load generator shared the cores (see Layout)',
      ),
      ...(separate ? {} : { met: undefined }),
    },
  ];
}

/**
 * Targets whose load generator was busy ≥ 90 % of the cores its threads had (median over
 * rounds): there the client, not the target, may have set the pace.
 */
export function clientBound(report: BenchReport): string[] {
  const threads = report.options.clientThreads ?? 1;
  return measuredTargets(report)
    .filter((t) => med(t, (r) => r.cpu.pctOfCore.client ?? 0) >= 90 * threads)
    .map((t) => t.id);
}
