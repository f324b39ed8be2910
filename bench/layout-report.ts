/*
 * The report's Layout section (where every process ran, core-map.ts) and its scaling table
 * (issue 17), for stdout and RESULTS.md.
 */
import { formatCpuList, ROLES, scalingCounts } from './core-map.js';
import { type BenchReport, clientBound, scaling } from './summary.js';
import { SCALED } from './targets.js';
import { table } from './table.js';

const num = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);

const WHO: Record<(typeof ROLES)[number], string> = {
  client: 'load generator (the bench process)',
  upstream: 'upstream',
  redis: 'redis-server',
  otlp: 'OTLP endpoint',
  gateway: 'the target (every gateway, node-raw)',
};

/** Whether the load generator may have set the pace anywhere. */
function clientLine(report: BenchReport): string {
  const threads = report.options.clientThreads ?? 1;
  const cores = threads === 1 ? 'core' : `${threads} threads' cores`;
  const bound = clientBound(report);
  return bound.length === 0
    ? `The load generator stayed below 90 % of its ${cores} for every target.`
    : `**Client-bound** (load generator ≥ 90 % of its ${cores}): ${bound.join(', ')}; their req/s is the client's.`;
}

/** One paragraph and a table: the layout planned and what the kernel applied. */
export function layoutSection(report: BenchReport): string {
  const layout = report.layout;
  if (layout === undefined) {
    return `Shared: the load generator, upstream, Redis, the OTLP endpoint and the gateway ran on the same cores (a run from before issue 17 recorded no layout).\n\n${clientLine(report)}`;
  }
  const threads = layout.clientThreads;
  const how =
    layout.kind === 'separate'
      ? `Separate (the core map of bench/core-map.ts for ${layout.cores} cores): each role on its own cores, pinned with taskset; the load comes from ${threads} load-generator thread${threads === 1 ? '' : 's'}.`
      : layout.pinned
        ? `Shared, limited to ${layout.cores} core${layout.cores === 1 ? '' : 's'} (\`--cpus\`): every role on the same cores, pinned with taskset.`
        : `Shared: every role on all ${layout.cores} cores (fewer than 8), nothing pinned, as before issue 17. Read ratios and CPU µs/request rather than absolute req/s.`;
  const folded = layout.folded
    ? ' **Folded**: planned for more cores than the machine has (`--cpus`), so roles share real CPUs; this run tested the layout, its figures measure nothing.'
    : '';
  const rows = ROLES.map((role) => [
    role,
    WHO[role],
    formatCpuList(layout.cpus[role]),
    (layout.observed[role] ?? []).join(' ') || '–',
  ]);
  return `${how}${folded}\n\n${table(['role', 'who', 'CPUs planned', 'Cpus_allowed_list seen'], rows)}\n\n${clientLine(report)}`;
}

/** Req/s per worker count (speed-up over 1 worker) of the scaling table's gateways. */
export function scalingTable(report: BenchReport): string {
  const counts = report.layout
    ? scalingCounts(report.layout)
    : [1, 2, 4, 8].filter((n) => n <= Math.max(1, report.options.clusterWorkers));
  const rows = scaling(report, SCALED, counts).map((row) => [
    row.name,
    ...row.cells.map((c) =>
      c.rps === undefined
        ? 'to be measured'
        : `${num(c.rps)} (${num(c.speedUp, 2)} ×) · ${num(c.cpuUsPerReq)} µs`,
    ),
  ]);
  return table(
    ['target', ...counts.map((n) => `${n} worker${n === 1 ? '' : 's'}: req/s (× 1 worker) · CPU µs/req`)],
    rows,
  );
}
