/*
 * The report of a run: tables (stdout and RESULTS.md share them), the issue's targets met or
 * not, and RESULTS.md itself, regenerated whole except the hand-written analysis between
 * the analysis markers, which is carried over from the previous file.
 */
import {
  addedLatency,
  atRate,
  type BenchReport,
  criteria,
  find,
  measuredTargets,
  med,
  peakRss,
  ratio,
} from './summary.js';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chartSvg } from './chart.js';
import { STREAMS_PER_SESSION } from './h2-client.js';
import { median } from './harness.js';
import { ablationNotes, ablationTable, criteria17Lines } from './ablation-report.js';
import { criteria18Lines, WATCHED } from './dashboard-report.js';
import { layoutSection, scalingTable } from './layout-report.js';
import { table } from './table.js';
import { tlsTable } from './tls-report.js';

export { table } from './table.js';

const num = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);
const ms = (n: number | undefined) => num(n, 3);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
/** The highest of figures some runs may lack (JSON from before they were recorded). */
const worst = (values: (number | undefined)[]) => {
  const known = values.filter((v) => v !== undefined);
  return known.length > 0 ? num(Math.max(...known)) : '–';
};

function throughputTable(report: BenchReport): string {
  const direct = find(report, 'direct');
  const nodeRaw = find(report, 'node-raw');
  const rows = measuredTargets(report).map((t) => [
    t.label,
    num(med(t, (r) => r.rps)),
    num(ratio(t, direct), 2),
    num(ratio(t, nodeRaw), 2),
    num(med(t, (r) => r.cpuUsPerReq)),
    ms(med(t, (r) => r.latency.p50)),
    ms(med(t, (r) => r.latency.p97_5)),
    ms(med(t, (r) => r.latency.p99)),
    String(sum(t.saturation.map((r) => r.non2xx))),
    String(sum(t.saturation.map((r) => r.errors))),
  ]);
  return table(
    [
      'target',
      'req/s',
      '× direct',
      '× node-raw',
      'CPU µs/req',
      'p50 ms',
      'p97.5 ms',
      'p99 ms',
      'non-2xx',
      'errors',
    ],
    rows,
  );
}

function resourceTable(report: BenchReport): string {
  const rows = measuredTargets(report).map((t) => {
    const usesRedis = t.saturation.some((r) => r.redis);
    const redis = (figure: 'scriptsPerReq' | 'commandsPerReq' | 'readsPerReq') =>
      usesRedis
        ? num(
            med(t, (r) => r.redis?.[figure] ?? 0),
            3,
          )
        : '–';
    const cpu = (group: string) => num(med(t, (r) => r.cpu.usPerReq[group] ?? 0));
    return [
      t.label,
      num(peakRss(t, ['worker', 'process'])),
      num(peakRss(t, ['primary'])),
      redis('scriptsPerReq'),
      redis('commandsPerReq'),
      redis('readsPerReq'),
      cpu('upstream'),
      usesRedis ? cpu('redis') : '–',
      cpu('otlp'),
      num(med(t, (r) => r.cpu.pctOfCore.client ?? 0)),
      worst(t.saturation.map((r) => r.cpu.pctOfCore.foreign)),
    ];
  });
  return table(
    [
      'target',
      'peak RSS MB (worker)',
      'peak RSS MB (primary)',
      'Redis scripts/req',
      'Redis cmds/req (incl. in scripts)',
      'Redis reads/req',
      'upstream CPU µs/req',
      'Redis CPU µs/req',
      'OTLP endpoint CPU µs/req',
      'client CPU %',
      'other load % (max)',
    ],
    rows,
  );
}

function fixedRateTable(report: BenchReport): string {
  const direct = find(report, 'direct');
  const rows: string[][] = [];
  for (const rate of report.options.rates) {
    for (const t of measuredTargets(report).filter((x) => x.fixedRate.length > 0)) {
      const runs = atRate(t, rate);
      rows.push([
        String(rate),
        t.label,
        num(median(runs.map((r) => r.achievedRate))),
        ms(median(runs.map((r) => r.latency.p50))),
        ms(median(runs.map((r) => r.latency.p99))),
        ms(addedLatency(t, direct, rate, 'p50')),
        ms(addedLatency(t, direct, rate, 'p99')),
        num(median(runs.map((r) => r.cpuUsPerReq))),
        String(sum(runs.map((r) => r.non2xx + r.errors))),
        ms(median(runs.map((r) => r.sendLagP99Ms))),
        worst(runs.map((r) => r.cpu.pctOfCore.foreign)),
      ]);
    }
  }
  return table(
    [
      'req/s',
      'target',
      'achieved req/s',
      'p50 ms',
      'p99 ms',
      'p50 added over direct, ms',
      'p99 added over direct, ms',
      'CPU µs/req',
      'non-2xx + errors',
      'client send lag p99 ms',
      'other load % (max)',
    ],
    rows,
  );
}

function criteriaLines(report: BenchReport): string {
  return criteria(report)
    .map((c) => {
      const verdict = c.met === undefined ? 'n/a' : c.met ? 'met' : 'NOT met';
      return `- **${verdict}** — ${c.what}: **${c.value}** (target ${c.goal}${c.note ? `; ${c.note}` : ''})`;
    })
    .join('\n');
}

function skippedLines(report: BenchReport): string {
  return report.targets
    .flatMap((t) => [
      ...(t.skipped !== undefined ? [`- skipped ${t.label}: ${t.skipped}`] : []),
      ...t.failures.map((failure) => `- failed ${t.label}: ${failure}`),
    ])
    .join('\n');
}

function runLine(report: BenchReport): string {
  const o = report.options;
  return (
    `${o.connections} connections, pipelining 1, ${o.warmUpS} s warm-up + ${o.durationS} s measured per target, ` +
    `${o.rounds} round(s) interleaved; h2 targets: as many streams in flight, ${STREAMS_PER_SESSION} per TLS session; ` +
    `fixed rates ${o.rates.join(' and ')} req/s for ${o.durationS} s ` +
    `(first ${o.fixedRateSettleS} s not measured); whole run ${Math.round(report.elapsedS)} s`
  );
}

/** What goes to stdout at the end of a run. */
export function textReport(report: BenchReport): string {
  const skipped = skippedLines(report);
  return [
    `portico bench${report.smoke ? ' (smoke)' : ''}: ${runLine(report)}`,
    `node ${report.machine.node}, ${report.machine.cpu}, ${report.machine.cores} cores`,
    ...(skipped ? ['', skipped] : []),
    '',
    'Throughput (saturation, medians over rounds)',
    throughputTable(report),
    '',
    'Resources',
    resourceTable(report),
    '',
    'Fixed-rate latency',
    fixedRateTable(report),
    '',
    'Per-middleware cost (1 worker, saturation)',
    ablationTable(report),
    ablationNotes(report),
    '',
    'Scaling',
    scalingTable(report),
    '',
    'TLS',
    tlsTable(report),
    '',
    'Layout',
    layoutSection(report),
    '',
    'Targets (issue 6)',
    report.smoke ? 'not judged: a smoke run measures cold targets for 1 s' : criteriaLines(report),
    '',
    'Targets (issue 17)',
    report.smoke ? 'not judged: a smoke run measures cold targets for 1 s' : criteria17Lines(report),
    '',
    'Targets (issue 18)',
    report.smoke ? 'not judged: a smoke run measures cold targets for 1 s' : criteria18Lines(report),
    '',
  ].join('\n');
}

const ANALYSIS_START = '<!-- analysis:start (kept by the generator; edit freely) -->';
const ANALYSIS_END = '<!-- analysis:end -->';
const ANALYSIS_PLACEHOLDER =
  '_Profile analysis of this run: where the time goes, what was tried, what is left._';

/** The hand-written analysis of `previous` RESULTS.md, or a placeholder. */
export function keptAnalysis(previous: string | undefined): string {
  const start = previous?.indexOf(ANALYSIS_START) ?? -1;
  const end = previous?.indexOf(ANALYSIS_END) ?? -1;
  if (previous === undefined || start === -1 || end < start) return ANALYSIS_PLACEHOLDER;
  return previous.slice(start + ANALYSIS_START.length, end).trim();
}

export function resultsMarkdown(report: BenchReport, analysis: string, jsonName: string): string {
  const m = report.machine;
  const skipped = skippedLines(report);
  const spans = report.spans;
  return `# Benchmark results

Generated by \`npm run bench\` from the run of ${report.date} (raw runs: [results/${jsonName}](results/${jsonName})).
Everything but the analysis section is rewritten by the next run.

![bench chart](results/chart.svg)

## Machine

- CPU: ${m.cpu}, ${m.cores} cores available, ${m.memoryGb} GB RAM, Linux ${m.kernel}
- Node ${m.node}; nginx ${m.nginx ?? 'not installed'}; fast-gateway ${m.fastGateway}; autocannon ${m.autocannon}; redis-server ${m.redis ?? '?'}
- Run: ${runLine(report)}
${skipped ? `\n${skipped}\n` : ''}
## Layout

Where each process ran. On 8 cores or more the load generator, upstream, Redis, the OTLP
endpoint and the target each get their own cores (bench/core-map.ts; the same layout for
every target), pinned with \`taskset\`; below 8 they share the cores. \`Cpus_allowed_list
seen\` is what the kernel applied to each role's processes (all of them: gateway workers,
nginx workers, upstream workers), read from /proc while the run went.

${layoutSection(report)}

## Targets (issue 18)

\`${WATCHED}\`: portico-bare's config (its admin listener is on, as in every Portico
target) with the dashboard page open in a headless Chromium, polling \`/admin/*\` every 2 s
through the measured window, against portico-bare with nobody watching, in the same run.
CPU µs/request counts the gateway's primary and workers; Chromium's own CPU is recorded
apart (\`watcher\` in the JSON), like the load generator's.

${criteria18Lines(report)}

## Targets (issue 17)

${criteria17Lines(report)}

## Targets (issue 6)

${criteriaLines(report)}

## Throughput

Saturation with ${report.options.connections} connections. Ratios are taken round by round, then the median.
CPU µs/req: user + sys time of every process of the target (primary and workers) ÷ requests.
Latencies are each response's own time to the microsecond (autocannon's histogram keeps whole ms).

${throughputTable(report)}

## Resources

Peak RSS: highest VmRSS sampled every 100 ms during the measured runs, per process. Redis
scripts/req: EVAL/EVALSHA calls (one client command each); cmds/req: every INFO commandstats
call, which also counts the commands a script runs inside Redis (total_commands_processed
counts the same way; it is in the JSON); reads/req: Redis socket reads
(total_reads_processed), i.e. round trips once ioredis auto-pipelining has batched commands.
Upstream, Redis and OTLP endpoint CPU: what the target made those processes spend per
request. Client CPU: the bench process (load generator) in % of one core; near 100 % per
load-generator thread (see Layout) the client, not the target, sets the pace. Other load: CPU the machine spent on anything but
the bench's processes during the target's worst round, in % of one core (/proc/stat minus
the bench's processes; a few % is the kernel's own loopback network work): far above that,
the round competed with other work and its figures are suspect. Each target runs only while it is measured (nothing
idle competes for the cores).

${resourceTable(report)}
${spans ? `\nSpans received by the OTLP endpoint over the whole run: ${spans.received} for ${spans.tracedRequests} requests to traced targets (warm-ups included).\n` : ''}
## Fixed-rate latency

Open loop: requests leave on a steady schedule (about every millisecond, what is due),
each on a keep-alive connection from a pool, timed from send to last byte. Achieved below
the rate means the target saturated. The client's send lag shows its own jitter.

${fixedRateTable(report)}

## Per-middleware cost (issue 17)

Each middleware alone on a route (\`portico-only-<name>\`, 1 worker, its config section and
nothing else), between bare and the full chain, at saturation. µs/req over bare and × bare
are taken round by round, then the median. \`npm run bench -- --ablation\` runs these rows
alone (and \`direct\`, for the fixed-rate p99 below).

${ablationTable(report)}

${ablationNotes(report)}

## Scaling (issue 17)

portico-bare, portico-full, fast-gateway and nginx at 1, 2, 4 and 8 workers (the counts the
gateway has cores for), at saturation; × 1 worker is the same target's throughput ratio,
round by round. \`npm run bench -- --scaling\` runs these alone.

${scalingTable(report)}

## TLS (issue 15)

portico-bare and nginx in plain HTTP, over TLS with HTTP/1.1 (\`-tls\`: autocannon, keep-alive
connections, so one handshake per connection) and over HTTP/2 (\`-h2\`: the bench's
\`node:http2\` client, 50 streams in flight, 5 per TLS session), the same certificate
(EC P-256) for both; upstream exchanges are plain HTTP/1.1 in all. × plain: CPU µs/request
over the same gateway in plain HTTP, round by round.

${tlsTable(report)}

## Analysis

${ANALYSIS_START}
${analysis}
${ANALYSIS_END}
`;
}

/**
 * Writes RESULTS.md, results/<date>.json and results/chart.svg into `dir`, carrying over the
 * analysis section of `previousResults` (the RESULTS.md being replaced). Returns the paths.
 */
export async function writeReport(
  report: BenchReport,
  dir: string,
  previousResults: string,
): Promise<string[]> {
  const resultsDir = join(dir, 'results');
  await mkdir(resultsDir, { recursive: true });
  const jsonName = `${report.date.slice(0, 10)}.json`;
  const previous = await readFile(previousResults, 'utf8').catch(() => undefined);
  const files = [join(dir, 'RESULTS.md'), join(resultsDir, jsonName), join(resultsDir, 'chart.svg')] as const;
  await writeFile(files[0], resultsMarkdown(report, keptAnalysis(previous), jsonName));
  await writeFile(files[1], `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files[2], chartSvg(report));
  return [...files];
}
