/*
 * Issue 18's target: with the dashboard page open, portico-bare's CPU µs/request stays
 * within 3 % of portico-bare's, both from the same run (ratio round by round, then the
 * median). Both targets run the same config, admin listener included: the only difference
 * is the browser polling the page, whose own CPU is not counted (it is the watcher).
 */
import { criterionLines } from './ablation-report.js';
import type { PollCount } from './dashboard-watcher.js';
import { median } from './harness.js';
import {
  type BenchReport,
  type Criterion,
  find,
  ratio,
  type SaturationRun,
  type TargetResult,
} from './summary.js';

export const WATCHED = 'portico-bare-dashboard';
/** CPU µs/request with the page open ÷ without, at most. */
export const DASHBOARD_GOAL = 1.03;

/** The page's requests between two readings of its count. */
export const pollsDuring = (before: PollCount, after: PollCount): PollCount => ({
  answered: after.answered - before.answered,
  failed: after.failed - before.failed,
});

const cpu = (r: SaturationRun) => r.cpuUsPerReq;
const measured = (t: TargetResult | undefined): t is TargetResult =>
  t !== undefined && t.skipped === undefined && t.saturation.length > 0;

/** Why the watched target's rounds cannot be judged, if they cannot. */
function unwatched(t: TargetResult): string | undefined {
  const silent = t.saturation.filter((r) => (r.dashboardPolls?.answered ?? 0) === 0).map((r) => r.round);
  if (silent.length > 0) return `the page did not poll during round ${silent.join(', ')}`;
  const failed = t.saturation.filter((r) => (r.dashboardPolls?.failed ?? 0) > 0).map((r) => r.round);
  if (failed.length > 0) return `the page's requests failed in round ${failed.join(', ')}`;
  return undefined;
}

function line(report: BenchReport, workers: number, judged: boolean): Criterion {
  const what = `${WATCHED} ÷ portico-bare CPU µs/request, ${workers} worker${workers === 1 ? '' : 's'}`;
  const goal = `≤ ${DASHBOARD_GOAL.toFixed(2)}`;
  const watched = find(report, `${WATCHED}/${workers}`);
  const bare = find(report, `portico-bare/${workers}`);
  if (watched?.skipped !== undefined)
    return { what, value: 'not measured', goal, met: undefined, note: `skipped: ${watched.skipped}` };
  const value = ratio(watched, bare, cpu);
  if (value === undefined || !measured(watched) || !measured(bare))
    return { what, value: 'not measured', goal, met: undefined };
  const problem = unwatched(watched);
  const figures = [
    `CPU µs/req ${median(watched.saturation.map(cpu)).toFixed(0)} vs ${median(bare.saturation.map(cpu)).toFixed(0)}`,
    `${median(watched.saturation.map((r) => r.dashboardPolls?.answered ?? 0)).toFixed(0)} page requests answered per measured window`,
    `Chromium's own ${median(watched.saturation.map((r) => r.cpu.usPerReq.watcher ?? 0)).toFixed(1)} µs/req not counted`,
  ];
  const verdict = problem ?? (judged ? undefined : 'shown, not judged: the target is at 1 worker');
  return {
    what,
    value: `${value.toFixed(3)} ×`,
    goal,
    met: verdict === undefined ? value <= DASHBOARD_GOAL : undefined,
    note: [...(verdict ? [`not judged: ${verdict}`] : []), ...figures].join('; '),
  };
}

/** Issue 18's line (1 worker), plus the cluster default's, shown, when it ran. */
export function criteria18(report: BenchReport): Criterion[] {
  const cluster = report.options.clusterWorkers;
  const more =
    cluster > 1 && measured(find(report, `${WATCHED}/${cluster}`)) ? [line(report, cluster, false)] : [];
  return [line(report, 1, true), ...more];
}

export function criteria18Lines(report: BenchReport): string {
  return criterionLines(criteria18(report));
}
