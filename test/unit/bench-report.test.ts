import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ablationTable } from '../../bench/ablation-report.js';
import { criteria18, criteria18Lines, pollsDuring } from '../../bench/dashboard-report.js';
import { chromiumMissing } from '../../bench/dashboard-watcher.js';
import { ablation, type BenchReport, criteria17, type SaturationRun } from '../../bench/summary.js';
import { ABLATION_IDS, allTargets, pickTargets } from '../../bench/targets.js';
import { tlsTable } from '../../bench/tls-report.js';

/** A saturation run with only the figures the ablation reads. */
const run = (round: number, cpuUsPerReq: number, rps: number, rssMb = 80): SaturationRun =>
  ({
    round,
    cpuUsPerReq,
    rps,
    memory: [{ pid: 1, role: 'worker', peakRssMb: rssMb, hwmMb: rssMb }],
  }) as unknown as SaturationRun;

const target = (id: string, runs: SaturationRun[]): BenchReport['targets'][number] => ({
  id,
  name: id.split('/')[0] as string,
  label: id,
  workers: 1,
  failures: [],
  saturation: runs,
  fixedRate: [],
});

const report = (targets: BenchReport['targets']) =>
  ({ smoke: false, options: { rates: [1000, 2000], clusterWorkers: 2 }, targets }) as unknown as BenchReport;

describe('bench ablation (issue 17)', () => {
  const r = report([
    target('portico-bare/1', [run(1, 60, 13000), run(2, 50, 14000)]),
    target('portico-only-tracing/1', [run(1, 72, 11000), run(2, 55, 12500)]),
    target('portico-only-logging/1', [run(1, 70, 12000), run(2, 60, 12000)]),
    target('portico-full/1', [run(1, 90, 9000, 120), run(2, 80, 9500, 104)]),
  ]);

  test('cost over bare and ratio to bare are taken round by round, then the median', () => {
    const rows = Object.fromEntries(ablation(r).map((row) => [row.id, row]));
    const tracing = rows['portico-only-tracing/1'];
    assert.equal(tracing?.addedUs, (12 + 5) / 2);
    assert.ok(Math.abs((tracing?.timesBare ?? 0) - (1.2 + 1.1) / 2) < 1e-9);
    assert.equal(rows['portico-bare/1']?.addedUs, 0);
    assert.equal(rows['portico-only-auth/1']?.measured, false);
    assert.equal(rows['portico-full/1']?.peakRssWorkerMb, 120);
  });

  test('rows that did not run say so instead of showing a number', () => {
    const md = ablationTable(r);
    assert.match(md, /auth \(HS256, token cache\)\s*\|\s*portico-only-auth\/1\s*\|\s*to be measured/);
    assert.match(md, /tracing \(100 % sampled\)\s*\|\s*portico-only-tracing\/1\s*\|\s*11750/);
  });

  test("issue 17's targets are judged from the same figures", () => {
    const judged = Object.fromEntries(criteria17(r).map((c) => [c.what, c]));
    const tracing = judged['tracing alone ÷ portico-bare CPU µs/request (100 % sampled)'];
    assert.equal(tracing?.met, true); // 1.15 ≤ 1.20
    assert.equal(judged['logging alone ÷ portico-bare CPU µs/request']?.met, false); // 1.18 > 1.08
    assert.equal(judged['portico-full ÷ portico-bare CPU µs/request, 1 worker']?.met, false); // 1.55
    assert.equal(judged['peak RSS per worker under full-chain saturation (portico-full)']?.met, false);
    // Not measured: neither met nor failed.
    assert.equal(judged['portico-bare ÷ node-raw throughput, 1 worker']?.met, undefined);
  });
});

describe('bench target selection (--only, --ablation, --scaling)', () => {
  const all = allTargets({ cluster: 16, scaling: [1, 2, 4, 8] });
  const ids = (picked: ReturnType<typeof pickTargets>) =>
    'selected' in picked ? picked.selected.map((t) => t.id) : picked.unknown;

  test('no flag: every target, one-middleware routes at 1 worker only', () => {
    const picked = pickTargets(all, {});
    assert.ok('selected' in picked && !picked.subset);
    assert.ok(ids(picked).includes('portico-only-tracing/1'));
    assert.ok(!ids(picked).some((id) => /^portico-only-.*\/(?!1$)/.test(id)));
    // The scaling table's gateways at 1, 2, 4, 8 and the cluster default; the others at 1 and 16.
    assert.deepEqual(
      ids(picked).filter((id) => id.startsWith('portico-bare/')),
      ['portico-bare/1', 'portico-bare/2', 'portico-bare/4', 'portico-bare/8', 'portico-bare/16'],
    );
    assert.deepEqual(
      ids(picked).filter((id) => id.startsWith('portico-pool/')),
      ['portico-pool/1', 'portico-pool/16'],
    );
  });

  test('--ablation: direct, bare, each middleware alone, full', () => {
    assert.deepEqual(new Set(ids(pickTargets(all, { ablation: true }))), new Set(ABLATION_IDS));
  });

  test('--scaling: the four gateways at the scaling counts; --only adds to it', () => {
    assert.deepEqual(ids(pickTargets(all, { scaling: [1, 2], only: 'direct' })), [
      'direct',
      'nginx/1',
      'nginx/2',
      'fast-gateway/1',
      'fast-gateway/2',
      'portico-bare/1',
      'portico-bare/2',
      'portico-full/1',
      'portico-full/2',
    ]);
  });

  test('an unknown name is reported', () => {
    assert.deepEqual(pickTargets(all, { only: 'portico-bare/1,nope' }), { unknown: ['nope'] });
  });
});

describe('bench TLS table (issue 15)', () => {
  test('TLS variants next to their plain gateway, CPU over plain round by round; skips say why', () => {
    const r = report([
      target('portico-bare/1', [run(1, 60, 13000), run(2, 50, 14000)]),
      target('portico-bare-tls/1', [run(1, 90, 9000), run(2, 70, 10000)]),
      { ...target('portico-bare-h2/1', []), skipped: 'this gateway does not accept server.tls' },
    ]);
    const md = tlsTable(r);
    assert.match(md, /portico-bare-tls\/1\s*\|\s*9500\s*\|\s*80\s*\|\s*1\.45/); // (1.5 + 1.4) / 2
    assert.match(md, /portico-bare-h2\/1\s*\|\s*skipped: this gateway does not accept server\.tls/);
    assert.match(md, /nginx-tls\/1\s*\|\s*to be measured/);
  });
});

describe('bench dashboard target (issue 18)', () => {
  /** A portico-bare-dashboard run: `polls` page requests answered in the window, Chromium's CPU apart. */
  const watched = (round: number, cpuUsPerReq: number, polls = 12, failed = 0): SaturationRun => ({
    ...run(round, cpuUsPerReq, 13000),
    cpu: { usPerReq: { target: cpuUsPerReq, watcher: 1.5 }, pctOfCore: {} },
    dashboardPolls: { answered: polls, failed },
  });
  const bare = () => target('portico-bare/1', [run(1, 50, 13000), run(2, 60, 12000), run(3, 40, 15000)]);
  const line = (r: BenchReport) => criteria18(r)[0];

  test('CPU µs/request with the page open over bare, round by round, then the median', () => {
    // Per round 1.10, 1.02, 1.02: median 1.02, met (the medians, 55 ÷ 50, would say 1.10).
    const met = line(
      report([
        bare(),
        target('portico-bare-dashboard/1', [watched(1, 55), watched(2, 61.2), watched(3, 40.8)]),
      ]),
    );
    assert.equal(met?.value, '1.020 ×');
    assert.equal(met?.met, true);
    assert.match(
      met?.note ?? '',
      /12 page requests answered per measured window; Chromium's own 1\.5 µs\/req not counted/,
    );
    // Per round 1.04, 1.05, 1.00: median 1.04 > 1.03.
    const over = line(
      report([bare(), target('portico-bare-dashboard/1', [watched(1, 52), watched(2, 63), watched(3, 40)])]),
    );
    assert.equal(over?.met, false);
  });

  test('not judged when the page did not poll or its requests failed in a round', () => {
    const silent = line(
      report([bare(), target('portico-bare-dashboard/1', [watched(1, 50), watched(2, 60, 0)])]),
    );
    assert.equal(silent?.met, undefined);
    assert.match(silent?.note ?? '', /not judged: the page did not poll during round 2/);
    const failing = line(report([bare(), target('portico-bare-dashboard/1', [watched(1, 50, 12, 4)])]));
    assert.equal(failing?.met, undefined);
    assert.match(failing?.note ?? '', /requests failed in round 1/);
  });

  test('without Chromium the target is skipped and the report says why', () => {
    const why = chromiumMissing('/nonexistent/chromium');
    assert.match(why ?? '', /chromium is not installed at \/nonexistent\/chromium/);
    const skipped = { ...target('portico-bare-dashboard/1', []), skipped: why as string };
    const r = report([bare(), skipped]);
    assert.equal(line(r)?.met, undefined);
    assert.match(
      criteria18Lines(r),
      /^- \*\*n\/a\*\* — portico-bare-dashboard ÷ portico-bare CPU µs\/request, 1 worker: \*\*not measured\*\* \(target ≤ 1\.03; skipped: chromium is not installed/,
    );
  });

  test('the 2-worker variant is shown, never judged; polls are counted between two readings', () => {
    const r = report([
      bare(),
      target('portico-bare-dashboard/1', [watched(1, 50)]),
      target('portico-bare/2', [run(1, 50, 20000)]),
      target('portico-bare-dashboard/2', [watched(1, 60)]),
    ]);
    const [, two] = criteria18(r);
    assert.equal(two?.value, '1.200 ×');
    assert.equal(two?.met, undefined);
    assert.deepEqual(pollsDuring({ answered: 4, failed: 1 }, { answered: 16, failed: 1 }), {
      answered: 12,
      failed: 0,
    });
    const ids = allTargets({ cluster: 2, scaling: [1, 2] }).map((t) => t.id);
    assert.ok(
      ids.includes('portico-bare-dashboard/1') && ids.includes('portico-bare-dashboard/2'),
      ids.join(),
    );
  });
});
