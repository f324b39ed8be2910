import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CLI, runCli } from './helpers/gateway.js';
import { request } from './helpers/net.js';

const ARTICLE = fileURLToPath(new URL('../../test/fixtures/article-config.yaml', import.meta.url));

// The article's config names fixed ports (gateway 8080, upstream 9002, OTLP 4317, and our
// admin listener default 9901). This test runs it byte for byte, so it needs them free.
test("the reference article's config runs unchanged: token, auth, rate limit, metrics, tracing without a collector", async () => {
  const upstream = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, traceparent: req.headers.traceparent ?? null }));
  });
  await new Promise<void>((resolve, reject) => {
    upstream.once('error', reject);
    upstream.listen(9002, '127.0.0.1', resolve);
  });
  const gateway = spawn(process.execPath, [CLI, '--config', ARTICLE], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  gateway.stdout.on('data', (c: Buffer) => (output += c.toString()));
  gateway.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => gateway.once('exit', resolve));
  try {
    const deadline = Date.now() + 20_000;
    while (!output.includes('portico ready')) {
      assert.ok(Date.now() < deadline && gateway.exitCode === null, `gateway did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const token = await runCli(['token', '--config', ARTICLE, '--sub', 'article-reader']);
    assert.equal(token.code, 0, token.stderr);
    const headers = { authorization: `Bearer ${token.stdout.trim()}` };

    assert.equal((await request('http://127.0.0.1:8080/users')).status, 401);
    const ok = await request('http://127.0.0.1:8080/users', { headers });
    assert.equal(ok.status, 200, ok.body);
    assert.match(String(ok.json().traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    // rps 5, burst 4: the burst is at most 4 (one spent above), then 429 with Retry-After.
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await request('http://127.0.0.1:8080/users', { headers })).status);
    assert.ok(statuses.includes(429), `statuses ${statuses.join(',')}`);
    const metrics = await request('http://127.0.0.1:8080/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /gateway_requests_total\{[^}]*path="\/users"/);
    // auth and ratelimit record into the metrics of the same worker registry, merged cluster-wide.
    assert.match(metrics.body, /gateway_auth_failures_total\{reason="missing_token"\} 1\n/);
    assert.match(
      metrics.body,
      /gateway_ratelimit_decisions_total\{decision="limited",policy="burst"\} [1-9]/,
    );
    assert.match(metrics.body, /gateway_ratelimit_decisions_total\{decision="allowed",policy="all"\} [1-9]/);
    assert.match(metrics.body, /gateway_ratelimit_store_up\{store="embedded"\} 1/);
  } finally {
    if (gateway.exitCode === null) gateway.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    upstream.close();
  }
});
