import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { fixedRate } from '../bench/fixed-rate.js';
import { saturate } from '../bench/load.js';
import { type BenchReport, SMOKE, smokeProblems } from '../bench/summary.js';

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
