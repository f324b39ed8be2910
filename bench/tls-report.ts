/*
 * The report's TLS table (issue 15): portico-bare and nginx in plain HTTP, over TLS with
 * HTTP/1.1 and over HTTP/2, side by side, with each TLS variant's CPU per request over its
 * plain one (round by round, then the median).
 */
import { type BenchReport, find, med, ratio } from './summary.js';
import { table } from './table.js';

const num = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);

const FAMILIES = [
  ['portico-bare', 'portico-bare-tls', 'portico-bare-h2'],
  ['nginx', 'nginx-tls', 'nginx-h2'],
] as const;

export function tlsTable(report: BenchReport): string {
  const counts = [...new Set([1, report.options.clusterWorkers])];
  const rows = counts.flatMap((workers) =>
    FAMILIES.flatMap(([plain, ...secure]) => {
      const base = find(report, `${plain}/${workers}`);
      return [plain, ...secure].map((name) => {
        const t = find(report, `${name}/${workers}`);
        const measured = t !== undefined && t.skipped === undefined && t.saturation.length > 0;
        const skipped = t?.skipped === undefined ? 'to be measured' : `skipped: ${t.skipped}`;
        return measured
          ? [
              `${name}/${workers}`,
              num(med(t, (r) => r.rps)),
              num(med(t, (r) => r.cpuUsPerReq)),
              name === plain
                ? '1.00'
                : num(
                    ratio(t, base, (r) => r.cpuUsPerReq),
                    2,
                  ),
            ]
          : [`${name}/${workers}`, skipped, '', ''];
      });
    }),
  );
  return table(['target', 'req/s', 'CPU µs/req', '× plain CPU µs/req'], rows);
}
