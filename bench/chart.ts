/*
 * bench/results/chart.svg: one row per target, two panels of horizontal bars, throughput
 * relative to `direct` and CPU µs per request. A hand-written SVG string: no dependency.
 */
import { type BenchReport, find, measuredTargets, med, ratio } from './summary.js';

const ROW = 24;
const LABEL = 260;
const PANEL = 300;
const GAP = 90;
const TOP = 64;
const WIDTH = LABEL + 2 * PANEL + GAP + 60;

const COLOURS: [string, string][] = [
  ['portico', '#2f6fd6'],
  ['nginx', '#2e9b55'],
  ['fast-gateway', '#e08a1e'],
  ['node-raw', '#8a5ac8'],
  ['direct', '#8c8c8c'],
];
const colour = (name: string) => COLOURS.find(([prefix]) => name.startsWith(prefix))?.[1] ?? '#555';

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const text = (x: number, y: number, body: string, attrs = '') =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs ? ` ${attrs}` : ''}>${escape(body)}</text>`;

export function chartSvg(report: BenchReport): string {
  const direct = find(report, 'direct');
  const rows = measuredTargets(report).map((t) => ({
    label: t.label,
    colour: colour(t.name),
    relative: ratio(t, direct),
    cpu: med(t, (r) => r.cpuUsPerReq),
  }));
  const maxRelative = Math.max(1, ...rows.map((r) => r.relative ?? 0));
  const maxCpu = Math.max(1, ...rows.map((r) => r.cpu));
  const height = TOP + rows.length * ROW + 40;
  const left = LABEL;
  const right = LABEL + PANEL + GAP;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    text(
      12,
      22,
      `Portico bench, ${report.date.slice(0, 10)}: ${report.machine.cpu}, ${report.machine.cores} cores, Node ${report.machine.node}${report.smoke ? ' (smoke run)' : ''}`,
      'font-weight="bold"',
    ),
    text(left, 48, 'throughput ÷ direct (higher is better)', 'fill="#333"'),
    text(right, 48, 'CPU µs per request (lower is better)', 'fill="#333"'),
  ];
  rows.forEach((r, i) => {
    const y = TOP + i * ROW;
    const mid = y + ROW / 2 + 4;
    const relWidth = (PANEL * (r.relative ?? 0)) / maxRelative;
    const cpuWidth = (PANEL * r.cpu) / maxCpu;
    if (i % 2 === 0) parts.push(`<rect x="0" y="${y}" width="${WIDTH}" height="${ROW}" fill="#f4f6f9"/>`);
    parts.push(
      text(LABEL - 10, mid, r.label, 'text-anchor="end"'),
      `<rect x="${left}" y="${y + 4}" width="${relWidth.toFixed(1)}" height="${ROW - 8}" fill="${r.colour}"/>`,
      text(
        left + relWidth + 6,
        mid,
        r.relative === undefined ? '– (direct not measured)' : r.relative.toFixed(2),
      ),
      `<rect x="${right}" y="${y + 4}" width="${cpuWidth.toFixed(1)}" height="${ROW - 8}" fill="${r.colour}"/>`,
      text(right + cpuWidth + 6, mid, r.cpu.toFixed(0)),
    );
  });
  // The 1.0 line, the upstream's own throughput, over the rows.
  const one = left + PANEL / maxRelative;
  parts.push(
    `<line x1="${one.toFixed(1)}" y1="${TOP - 6}" x2="${one.toFixed(1)}" y2="${TOP + rows.length * ROW}" stroke="#999" stroke-dasharray="3,3"/>`,
  );
  parts.push(
    text(
      12,
      height - 14,
      `${report.options.connections} connections, medians of ${report.options.rounds} interleaved round(s); see bench/RESULTS.md`,
      'fill="#666" font-size="11"',
    ),
    '</svg>',
    '',
  );
  return parts.join('\n');
}
