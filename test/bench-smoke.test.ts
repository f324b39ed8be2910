import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allowedCpus, availableCpus } from '../bench/affinity.js';
import { formatCpuList, planLayout, type Role, ROLES } from '../bench/core-map.js';
import { fixedRate } from '../bench/fixed-rate.js';
import { saturate } from '../bench/load.js';
import { processTree } from '../bench/processes.js';
import { type BenchReport, SMOKE, smokeProblems } from '../bench/summary.js';
import { ABLATION_IDS } from '../bench/targets.js';
import { chromiumMissing } from '../bench/dashboard-watcher.js';

/**
 * A server as slow as a loaded CI machine running portico-full: one response at a time, each
 * `msPerResponse` after the previous one (125 req/s at 8 ms), answering `status`.
 */
async function slowServer(msPerResponse: number, status = 200): Promise<{ url: string; server: Server }> {
  let free = 0;
  const server = createServer((req, res) => {
    req.resume();
    const at = Math.max(Date.now(), free) + msPerResponse;
    free = at;
    setTimeout(
      () => res.writeHead(status, { 'content-type': 'application/json' }).end('{}'),
      at - Date.now(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

/** The smoke run of one target, as bench/run.ts makes it: saturation, then each smoke rate. */
async function smokeOf(url: string): Promise<BenchReport> {
  const target = { urls: [url], pids: [process.pid] };
  const run = await saturate(target, { connections: 50, duration: SMOKE.durationS });
  const fixed = [];
  for (const rate of SMOKE.rates)
    fixed.push({
      round: 1,
      ...(await fixedRate(target, { rate, duration: SMOKE.durationS, settle: SMOKE.fixedRateSettleS })),
    });
  return {
    smoke: true,
    targets: [
      {
        id: 'slow/1',
        name: 'slow',
        label: 'slow',
        workers: 1,
        failures: [],
        saturation: [{ round: 1, ...run }],
        fixedRate: fixed,
      },
    ],
  } as unknown as BenchReport;
}

describe('bench --smoke', () => {
  test('a target as slow as a loaded machine passes: latency is never judged', async () => {
    const { url, server } = await slowServer(8);
    try {
      const report = await smokeOf(url);
      assert.deepEqual(smokeProblems(report), []);
      const fixed = report.targets[0]?.fixedRate ?? [];
      assert.ok(fixed.length > 0 && fixed.every((r) => r.total > 0 && r.errors === 0), JSON.stringify(fixed));
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  test('a target answering errors fails the smoke', async () => {
    const { url, server } = await slowServer(1, 500);
    try {
      const problems = smokeProblems(await smokeOf(url));
      assert.ok(
        problems.some((p) => /non-2xx/.test(p)),
        problems.join('\n'),
      );
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});

const BENCH = fileURLToPath(new URL('../bench/run.js', import.meta.url));

/** Which role a process of the bench is, by its command line (undefined: not one to judge). */
function roleOf(pid: number, benchPid: number): Role | undefined {
  if (pid === benchPid) return 'client';
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
  // `taskset -c LIST cmd` before it execs, or a child between fork and exec: not placed yet.
  if (basename(argv[0] ?? '') === 'taskset' || argv.some((a) => a.endsWith('bench/run.js'))) return undefined;
  const line = argv.join(' ');
  if (line.includes('redis-server')) return 'redis';
  if (line.includes('servers/upstream.js')) return 'upstream';
  if (line.includes('servers/otlp-sink.js')) return 'otlp';
  if (line.includes('src/cli.js')) return 'gateway';
  return undefined;
}

/**
 * Runs the real bench with `args` and, every 50 ms while it runs, reads Cpus_allowed_list of
 * every process below it (and of every thread of the bench process, the load generator):
 * the last value seen per process, by role.
 */
async function watchBench(args: string[]) {
  const bench = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  bench.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const last = new Map<string, { role: Role; list: string }>();
  /** Every process seen below the bench, with its command line. */
  const commands = new Map<number, string>();
  const pid = bench.pid as number;
  const poll = () => {
    for (const p of processTree(pid).slice(1)) {
      try {
        const line = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
        // Empty once it has exited and is not yet reaped: keep what it ran.
        if (line !== '') commands.set(p, line);
      } catch {
        // exited
      }
    }
    // From the line the bench prints once it has pinned itself and chosen its targets (a
    // thread that ended before the pin would otherwise be remembered unpinned).
    if (!/^bench( --smoke)?: /m.test(stderr)) return;
    for (const p of processTree(pid)) {
      const role = roleOf(p, pid);
      const list = allowedCpus(p);
      if (role !== undefined && list !== undefined) last.set(String(p), { role, list });
    }
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      // exited
    }
    for (const tid of tasks) {
      const list = allowedCpus(`${pid}/task/${tid}`);
      if (list !== undefined) last.set(`${pid}/${tid}`, { role: 'client', list });
    }
  };
  const timer = setInterval(poll, 50);
  const code = await new Promise<number | null>((resolve) => bench.once('exit', resolve));
  clearInterval(timer);
  const json = /report: .*?, (\S+\.json)/.exec(stderr)?.[1];
  assert.equal(code, 0, stderr);
  assert.ok(json, stderr);
  const report = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  const seen = new Map<Role, Set<string>>();
  for (const { role, list } of last.values()) seen.set(role, (seen.get(role) ?? new Set()).add(list));
  return { report, seen, stderr, commands };
}

describe('bench layout (issue 17): taskset applied to every process the bench starts', () => {
  test('--cpus 16 places client, upstream, Redis, OTLP endpoint and gateway on their planned CPUs', async () => {
    const available = availableCpus();
    const plan = planLayout(16, available);
    // Not --smoke: this judges where processes ran, not whether a loaded machine answered
    // every request of a gateway folded onto one CPU (the smoke's verdict).
    const { report, seen, stderr } = await watchBench([
      ...['--cpus', '16', '--only', 'portico-full/1'],
      ...['--duration', '1', '--rounds', '1'],
    ]);
    for (const role of ROLES) {
      const expected = formatCpuList(plan.cpus[role]);
      assert.deepEqual([...(seen.get(role) ?? [])], [expected], `${role}: ${stderr}`);
      assert.deepEqual(report.layout?.observed[role], [expected], role);
    }
    assert.equal(report.layout?.kind, 'separate');
    assert.equal(report.options.clientThreads, plan.clientThreads);
  });

  test('without --cpus on a machine under 8 cores nothing is pinned (as before)', async (t) => {
    const available = availableCpus();
    if (available.length >= 8) {
      t.skip(`this machine has ${available.length} CPUs: the default layout is separate here`);
      return;
    }
    const { report, seen } = await watchBench(['--smoke', '--only', 'portico-bare/1']);
    const all = formatCpuList(available);
    for (const role of ['client', 'upstream', 'gateway'] as const) {
      assert.deepEqual([...(seen.get(role) ?? [])], [all], role);
    }
    assert.equal(report.layout?.pinned, false);
    assert.equal(report.layout?.kind, 'shared');
  });
});

describe('bench --ablation (issue 17)', () => {
  test('a smoke run of --ablation measures bare, each middleware alone and full, and fills the table', async () => {
    const { report, stderr } = await watchBench(['--smoke', '--ablation']);
    assert.deepEqual(report.targets.map((t) => t.id).sort(), [...ABLATION_IDS].sort());
    for (const t of report.targets) {
      assert.deepEqual(t.failures, [], t.id);
      assert.ok((t.saturation[0]?.total ?? 0) > 0, `${t.id}: ${stderr}`);
    }
    const results = /report: (\S+RESULTS\.md)/.exec(stderr)?.[1] as string;
    // The table (the notes below it want the 2,000 req/s run a smoke run does not make).
    const section =
      readFileSync(results, 'utf8').split('## Per-middleware cost')[1]?.split('\n- p99')[0] ?? '';
    assert.match(section, /portico-only-logging\/1/);
    assert.doesNotMatch(section, /to be measured/);
  });
});

const noChromium = chromiumMissing();
if (noChromium) console.warn(`# SKIP bench dashboard target: ${noChromium}`);

describe('bench portico-bare-dashboard (issue 18)', { skip: noChromium ?? false }, () => {
  test("the page polls through the measured window; Chromium's CPU is recorded apart from the gateway's", async () => {
    // Not --smoke: 5 s measured, so at least two of the page's refreshes (every 2 s) start
    // inside the window, and one is answered there even on a loaded machine.
    const { report, stderr, commands } = await watchBench([
      ...['--only', 'portico-bare-dashboard/1'],
      ...['--duration', '5', '--rounds', '1'],
    ]);
    const [t] = report.targets;
    assert.deepEqual(t?.failures, [], stderr);
    const run = t?.saturation[0];
    assert.ok(run && run.total > 0, stderr);
    assert.ok((run.dashboardPolls?.answered ?? 0) >= 4, JSON.stringify(run.dashboardPolls));
    assert.equal(run.dashboardPolls?.failed, 0);
    assert.ok((run.cpu.usPerReq.watcher ?? 0) > 0, JSON.stringify(run.cpu));
    // The target's processes (its memory is sampled from the same trees as its CPU) are the
    // gateway's primary and its worker; no Chromium process among them.
    const chromium = [...commands].filter(([, line]) => /chromium/.test(line)).map(([p]) => p);
    assert.ok(chromium.length > 0, 'no chromium process seen');
    const measured = run.memory.map((m) => m.pid);
    assert.equal(measured.length, 2, JSON.stringify(run.memory));
    for (const p of measured) assert.match(commands.get(p) ?? '', /src\/cli\.js/, `pid ${p}`);
  });
});
