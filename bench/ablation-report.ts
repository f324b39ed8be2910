/*
 * The report's per-middleware cost table (issue 17's ablation) and issue 17's targets, for
 * stdout and RESULTS.md.
 */
import { ablation, type BenchReport, type Criterion, criteria17, find, peakRss } from './summary.js';
import { addedLatency } from './summary.js';
import { table } from './table.js';

const num = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);

export function ablationTable(report: BenchReport): string {
  const rows = ablation(report).map((r) =>
    r.measured
      ? [
          r.what,
          r.id,
          num(r.rps),
          num(r.cpuUsPerReq),
          r.addedUs === undefined ? '–' : `${r.addedUs >= 0 ? '+' : ''}${num(r.addedUs)}`,
          num(r.timesBare, 2),
          num(r.peakRssWorkerMb),
        ]
      : [r.what, r.id, 'to be measured', '', '', '', ''],
  );
  return table(
    ['route', 'target', 'req/s', 'CPU µs/req', 'µs/req over bare', '× bare CPU', 'peak RSS MB (worker)'],
    rows,
  );
}

/** The two figures the issue reports beside the table: added p99 at 2,000 req/s and full-chain RSS. */
export function ablationNotes(report: BenchReport): string {
  const full = find(report, 'portico-full/1');
  const p99 = addedLatency(full, find(report, 'direct'), 2000);
  const rss = full === undefined ? undefined : peakRss(full, ['worker']);
  return [
    `- p99 added by portico-full over direct at 2,000 req/s, 1 worker: ${p99 === undefined ? 'to be measured' : `${p99.toFixed(3)} ms`}`,
    `- peak RSS per worker under full-chain saturation, 1 worker: ${rss === undefined ? 'to be measured' : `${rss.toFixed(1)} MB`}`,
  ].join('\n');
}

export function criteria17Lines(report: BenchReport): string {
  return criterionLines(criteria17(report));
}

/** Targets as report lines: met, NOT met, or n/a (not measured or not judged). */
export function criterionLines(criteria: readonly Criterion[]): string {
  return criteria
    .map((c) => {
      const verdict = c.met === undefined ? 'n/a' : c.met ? 'met' : 'NOT met';
      return `- **${verdict}** — ${c.what}: **${c.value}** (target ${c.goal}${c.note ? `; ${c.note}` : ''})`;
    })
    .join('\n');
}
