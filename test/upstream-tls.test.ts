import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { makeCa, makeCert, OPENSSL, removeCa, type TestCa, type TestCert } from './helpers/certs.js';
import { type RunningGateway, runCli, startGateway, writeConfig } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, request, sleep, upgradeRequest } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

/*
 * Black-box, real TLS (issue 15, upstream side): the gateway verifies its upstreams'
 * certificates by default (a private CA must be named in `tls.ca`), checks the name it sends
 * as SNI, presents a client certificate to upstreams that require one, and does the same for
 * active health checks and WebSocket upgrades. Certificates come from a CA made per run.
 */

let ca: TestCa;
let otherCa: TestCa;
let clientCa: TestCa;
/** The upstreams' certificate: `localhost` and `127.0.0.1`, signed by `ca`. */
let server: TestCert;
/** The gateway's client certificate, signed by `clientCa` (which the mTLS upstream trusts). */
let client: TestCert;
/** A client certificate signed by `otherCa`: the mTLS upstream refuses it. */
let strangerClient: TestCert;
/** Another certificate from `clientCa`, for rotation. */
let nextClient: TestCert;

before(() => {
  ca = makeCa('Upstream Test CA');
  otherCa = makeCa('Someone Else CA');
  clientCa = makeCa('Gateway Clients CA');
  server = makeCert(ca, { cn: 'localhost', altNames: ['DNS:localhost', 'IP:127.0.0.1'] });
  client = makeCert(clientCa, { cn: 'gateway-client', usage: 'client' });
  strangerClient = makeCert(otherCa, { cn: 'stranger', usage: 'client' });
  nextClient = makeCert(clientCa, { cn: 'gateway-client-2', usage: 'client' });
});

after(() => {
  for (const c of [ca, otherCa, clientCa]) removeCa(c);
});

const notAfterOf = (cert: TestCert) =>
  Date.parse(new X509Certificate(readFileSync(cert.cert)).validTo) / 1000;

/**
 * `openssl s_server` with `ca`'s server certificate, requiring a client certificate from
 * `clientCa` and verifying it inside OpenSSL (a failure is a TLS alert, as from nginx; Node's
 * own server closes the connection without one). `-www` answers any GET with a 200 status page.
 */
async function startOpensslUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(
    OPENSSL,
    [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-cert',
      server.cert,
      '-key',
      server.key,
      '-CAfile',
      clientCa.cert,
      '-Verify',
      '1',
      '-verify_return_error',
      '-www',
      '-quiet',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Listening once a connect succeeds (bounded: 5 s).
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) break;
    if (i === 50 || child.exitCode !== null) throw new Error('openssl s_server did not start');
    await sleep(100);
  }
  return {
    url: `https://127.0.0.1:${port}`,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}

const tlsUpstream = (requestCert = false) =>
  startUpstream(undefined, {
    tls: {
      cert: server.cert,
      key: server.key,
      ...(requestCert ? { requestCert: { clientCa: clientCa.cert } } : {}),
    },
  });

async function adminOf(gw: RunningGateway): Promise<string> {
  return (await gw.waitFor((r) => r.msg === 'admin listener ready')).url as string;
}

const tlsErrorLines = (gw: RunningGateway, upstream: string) =>
  gw
    .records()
    .filter((r) => r.level === 50 && r.upstream === upstream && String(r.msg).startsWith('TLS to upstream'));

/** The error line of a failed handshake with `upstream` (it may reach stdout after the 502 did). */
const tlsErrorLine = (gw: RunningGateway, upstream: string) =>
  gw.waitFor((r) => r.level === 50 && r.upstream === upstream && String(r.msg).startsWith('TLS to upstream'));

/** A 502 for a failed upstream handshake, as every client sees it. */
function assertTlsRefusal(reply: { status: number; body: string; headers: Record<string, unknown> }): void {
  assert.equal(reply.status, 502, reply.body);
  assert.deepEqual(JSON.parse(reply.body), { error: 'upstream TLS handshake failed' });
  assert.ok(reply.headers['x-request-id'], 'X-Request-Id');
}

describe('upstream TLS: verification', () => {
  test('a private-CA upstream is refused without tls.ca (502, logged once at error with the reason, counted) and accepted with it', async () => {
    const up = await tlsUpstream();
    const gw = await startGateway({
      upstreams: {
        untrusted: { targets: [{ url: up.url }] },
        trusted: { targets: [{ url: up.url }], tls: { ca: ca.cert } },
      },
      routes: [
        { path: '/u/*', upstream: 'untrusted', middleware: ['metrics'] },
        { path: '/t/*', upstream: 'trusted' },
      ],
      metrics: { prometheus: { enabled: true } },
    });
    try {
      const seenBefore = up.seen.length;
      for (let i = 0; i < 3; i++) assertTlsRefusal(await request(`${gw.url}/u/x`));
      assert.equal(up.seen.length, seenBefore, 'no request reached the upstream');
      const ok = await request(`${gw.url}/t/hello`);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.json<{ url: string }>().url, '/t/hello');
      // An IP target without servername: no SNI, and the certificate names the IP.
      assert.equal(up.seen.at(-1)?.tls?.servername, false);

      // Every failed handshake counted (each request tried twice: retry on connect_failure)…
      const admin = await adminOf(gw);
      const metrics = parseMetrics((await request(`${admin}/metrics`)).body);
      assert.equal(
        sum(metrics, 'portico_upstream_tls_errors_total', { upstream: 'untrusted', reason: 'unknown_ca' }),
        6,
      );
      assert.equal(sum(metrics, 'gateway_upstream_errors_total', { kind: 'tls' }), 6);
      // …and logged once, in words, with the reason.
      await tlsErrorLine(gw, 'untrusted');
      const lines = tlsErrorLines(gw, 'untrusted');
      assert.equal(lines.length, 1, JSON.stringify(lines));
      assert.equal(lines[0]?.reason, 'unknown_ca');
      assert.match(String(lines[0]?.msg), /TLS certificate not trusted/);
      assert.equal(tlsErrorLines(gw, 'trusted').length, 0);
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
    }
  });

  test('servername is sent as SNI and verified: the right name is accepted, a wrong one refused', async () => {
    const up = await tlsUpstream();
    const gw = await startGateway({
      upstreams: {
        right: { targets: [{ url: up.url }], tls: { ca: ca.cert, servername: 'localhost' } },
        wrong: { targets: [{ url: up.url }], tls: { ca: ca.cert, servername: 'billing.internal' } },
      },
      routes: [
        { path: '/r/*', upstream: 'right' },
        { path: '/w/*', upstream: 'wrong' },
      ],
    });
    try {
      const ok = await request(`${gw.url}/r/x`);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(up.seen.at(-1)?.tls?.servername, 'localhost');
      // The client's Host is not the upstream's name: TLS is told the configured one.
      assert.equal(ok.json<{ headers: { host: string } }>().headers.host, `127.0.0.1:${gw.port}`);
      assertTlsRefusal(await request(`${gw.url}/w/x`));
      const line = await tlsErrorLine(gw, 'wrong');
      assert.equal(line.reason, 'name_mismatch');
      assert.match(String(line.msg), /does not name the host/);
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
    }
  });

  test("a route's plain target: https://… is verified too: refused without a trusted CA, accepted with one in the default store", async () => {
    const up = await tlsUpstream();
    const config = { routes: [{ path: '/*', target: `${up.url}/base` }] };
    const refusing = await startGateway(config);
    try {
      assertTlsRefusal(await request(`${refusing.url}/x`));
      assert.equal(up.seen.length, 0);
    } finally {
      assert.equal(await refusing.stop(), 0);
    }
    // The default store: Node's CAs plus NODE_EXTRA_CA_CERTS.
    const trusting = await startGateway(config, { env: { NODE_EXTRA_CA_CERTS: ca.cert } });
    try {
      const ok = await request(`${trusting.url}/x`);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.json<{ url: string }>().url, '/base/x');
    } finally {
      assert.equal(await trusting.stop(), 0);
      await up.close();
    }
  });

  test("the client's Host header never decides the name verified: an IP target's certificate must name the IP", async () => {
    // Names localhost only: a client sending `Host: localhost` must not make it pass.
    const named = makeCert(ca, { cn: 'localhost', name: 'localhost-only' });
    const up = await startUpstream(undefined, { tls: { cert: named.cert, key: named.key } });
    const gw = await startGateway(
      { routes: [{ path: '/*', target: up.url }] },
      { env: { NODE_EXTRA_CA_CERTS: ca.cert } },
    );
    try {
      assertTlsRefusal(await request(`${gw.url}/x`, { headers: { host: 'localhost' } }));
      assert.equal(up.seen.length, 0);
      assert.equal((await tlsErrorLine(gw, new URL(up.url).origin)).reason, 'name_mismatch');
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
    }
  });

  test('insecure_skip_verify accepts an untrusted upstream and is logged as a warning naming it, at start and on the reload that turns it on', async () => {
    const up = await tlsUpstream();
    const upstreams = (insecureB: boolean) => ({
      a: { targets: [{ url: up.url }], tls: { insecure_skip_verify: true } },
      b: { targets: [{ url: up.url }], tls: { insecure_skip_verify: insecureB } },
    });
    const routes = [
      { path: '/a/*', upstream: 'a' },
      { path: '/b/*', upstream: 'b' },
    ];
    let file = '';
    const gw = await startGateway(
      { upstreams: upstreams(false), routes, reload: { watch: false } },
      {
        beforeStart: (f) => {
          file = f;
          return Promise.resolve();
        },
      },
    );
    const warnings = (name: string) =>
      gw
        .records()
        .filter((r) => r.level === 40 && r.upstream === name && /insecure_skip_verify/.test(String(r.msg)));
    try {
      assert.equal((await request(`${gw.url}/a/x`)).status, 200);
      assertTlsRefusal(await request(`${gw.url}/b/x`));
      assert.equal(warnings('a').length, 1);
      assert.equal(warnings('b').length, 0);
      const admin = await adminOf(gw);
      const base = readFileSync(file, 'utf8');
      await writeFile(file, base.replace(/insecure_skip_verify: false/, 'insecure_skip_verify: true'));
      const reply = await request(`${admin}/admin/reload`, { method: 'POST', timeoutMs: 30_000 });
      assert.equal(reply.json().result, 'success', reply.body);
      assert.equal((await request(`${gw.url}/b/x`)).status, 200);
      await gw.waitFor(
        (r) => r.level === 40 && r.upstream === 'b' && /insecure_skip_verify/.test(String(r.msg)),
      );
      assert.equal(warnings('b').length, 1, 'the reload that turned it on');
      assert.equal(warnings('a').length, 1, 'not again for an upstream that already had it');
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
    }
  });
});

describe('upstream TLS: client certificates (mTLS)', () => {
  test("an upstream that requires a client certificate accepts the gateway's cert/key and refuses without (502); the certificate's expiry is a metric", async () => {
    const up = await tlsUpstream(true);
    const gw = await startGateway({
      upstreams: {
        with_cert: { targets: [{ url: up.url }], tls: { ca: ca.cert, cert: client.cert, key: client.key } },
        without: { targets: [{ url: up.url }], tls: { ca: ca.cert } },
      },
      routes: [
        { path: '/c/*', upstream: 'with_cert' },
        { path: '/n/*', upstream: 'without' },
      ],
      metrics: { prometheus: { enabled: true } },
    });
    try {
      const ok = await request(`${gw.url}/c/x`);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(up.seen.at(-1)?.tls?.clientCn, 'gateway-client');
      const seen = up.seen.length;
      assertTlsRefusal(await request(`${gw.url}/n/x`));
      assert.equal(up.seen.length, seen, 'the refused request never reached the upstream');
      assert.equal((await tlsErrorLine(gw, 'without')).reason, 'handshake_refused');
      const metrics = parseMetrics((await request(`${await adminOf(gw)}/metrics`)).body);
      const expiry = metrics.filter((s) => s.name === 'portico_tls_certificate_expiry_timestamp_seconds');
      assert.deepEqual(
        expiry.map((s) => ({ ...s.labels, value: s.value })),
        [{ name: 'gateway-client', source: 'upstreams.with_cert.tls', value: notAfterOf(client) }],
      );
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
    }
  });

  test('an upstream that verifies client certificates in OpenSSL (openssl s_server, as nginx does) refuses an untrusted one with an alert: 502, handshake_refused', async () => {
    const up = await startOpensslUpstream();
    const gw = await startGateway({
      upstreams: {
        trusted: { targets: [{ url: up.url }], tls: { ca: ca.cert, cert: client.cert, key: client.key } },
        stranger: {
          targets: [{ url: up.url }],
          tls: { ca: ca.cert, cert: strangerClient.cert, key: strangerClient.key },
        },
      },
      routes: [
        { path: '/t/*', upstream: 'trusted' },
        { path: '/s/*', upstream: 'stranger' },
      ],
    });
    try {
      assert.equal((await request(`${gw.url}/t/`)).status, 200);
      assertTlsRefusal(await request(`${gw.url}/s/`));
      const line = await tlsErrorLine(gw, 'stranger');
      assert.equal(line.reason, 'handshake_refused');
      assert.match(String(line.msg), /unknown ca/);
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
    }
  });

  test('a rotated CA file and client certificate take effect on reload', async () => {
    const up = await tlsUpstream(true);
    const dir = await mkdtemp(join(tmpdir(), 'portico-upstream-tls-'));
    const files = {
      ca: join(dir, 'ca.pem'),
      cert: join(dir, 'client.pem'),
      key: join(dir, 'client-key.pem'),
    };
    // Start with a CA that did not sign the upstream's certificate.
    await copyFile(otherCa.cert, files.ca);
    await copyFile(client.cert, files.cert);
    await copyFile(client.key, files.key);
    const gw = await startGateway({
      upstreams: { billing: { targets: [{ url: up.url }], tls: files } },
      routes: [{ path: '/*', upstream: 'billing' }],
      reload: { watch: false },
    });
    const reload = async () => {
      const reply = await request(`${await adminOf(gw)}/admin/reload`, { method: 'POST', timeoutMs: 30_000 });
      assert.equal(reply.json().result, 'success', reply.body);
    };
    try {
      assertTlsRefusal(await request(`${gw.url}/x`));
      await copyFile(ca.cert, files.ca);
      await reload();
      assert.equal((await request(`${gw.url}/x`)).status, 200, 'the new CA verifies the upstream');
      assert.equal(up.seen.at(-1)?.tls?.clientCn, 'gateway-client');
      await copyFile(nextClient.cert, files.cert);
      await copyFile(nextClient.key, files.key);
      await reload();
      assert.equal((await request(`${gw.url}/x`)).status, 200);
      assert.equal(
        up.seen.at(-1)?.tls?.clientCn,
        'gateway-client-2',
        'the new client certificate is presented',
      );
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('upstream TLS: health checks and WebSocket', () => {
  test('active health checks use the same TLS settings: healthy with the CA (and client certificate), unhealthy with the reason without', async () => {
    const plain = await tlsUpstream();
    const mtls = await tlsUpstream(true);
    const check = { interval: '1s', timeout: '500ms' };
    const gw = await startGateway({
      upstreams: {
        trusted: { targets: [{ url: plain.url }], health_check: check, tls: { ca: ca.cert } },
        untrusted: { targets: [{ url: plain.url }], health_check: check },
        mtls: {
          targets: [{ url: mtls.url }],
          health_check: check,
          tls: { ca: ca.cert, cert: client.cert, key: client.key },
        },
        no_cert: { targets: [{ url: mtls.url }], health_check: check, tls: { ca: ca.cert } },
      },
      routes: [
        { path: '/a/*', upstream: 'trusted' },
        { path: '/b/*', upstream: 'untrusted' },
        { path: '/c/*', upstream: 'mtls' },
        { path: '/d/*', upstream: 'no_cert' },
      ],
    });
    try {
      const reply = await request(`${await adminOf(gw)}/admin/upstreams`);
      const pools = reply.json<{
        upstreams: { name: string; endpoints: { state: string; reason: string }[] }[];
      }>().upstreams;
      const state = (name: string) => pools.find((p) => p.name === name)?.endpoints[0];
      assert.equal(state('trusted')?.state, 'healthy', state('trusted')?.reason);
      assert.equal(state('mtls')?.state, 'healthy', state('mtls')?.reason);
      assert.deepEqual(state('untrusted'), {
        ...state('untrusted'),
        state: 'unhealthy',
        reason: '1 failed check: TLS certificate not trusted',
      });
      assert.equal(state('no_cert')?.state, 'unhealthy');
      assert.match(String(state('no_cert')?.reason), /^1 failed check: TLS handshake refused \(ERR_SSL_/);
    } finally {
      assert.equal(await gw.stop(), 0);
      await plain.close();
      await mtls.close();
    }
  });

  test('a WebSocket upgrade to a TLS upstream is verified with the same CA: tunnelled with it, refused without', async () => {
    const up = await tlsUpstream();
    const upgrades: (string | false)[] = [];
    up.server.on('upgrade', (req, socket: Socket) => {
      upgrades.push((socket as unknown as { servername: string | false }).servername);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
    });
    const gw = await startGateway({
      upstreams: {
        trusted: { targets: [{ url: up.url }], tls: { ca: ca.cert, servername: 'localhost' } },
        untrusted: { targets: [{ url: up.url }] },
      },
      routes: [
        { path: '/t/*', upstream: 'trusted' },
        { path: '/u/*', upstream: 'untrusted' },
      ],
    });
    try {
      const { res, socket } = await upgradeRequest(`${gw.url}/t/ws`);
      assert.equal(res.statusCode, 101);
      socket.destroy();
      assert.deepEqual(upgrades, ['localhost']);
      await assert.rejects(upgradeRequest(`${gw.url}/u/ws`), /no upgrade: 502/);
      assert.equal(upgrades.length, 1, 'the untrusted upstream saw no upgrade');
      await gw.waitFor((r) => r.upstream === 'untrusted' && r.reason === 'unknown_ca');
    } finally {
      assert.equal(await gw.stop(), 0);
      await up.close();
    }
  });
});

describe('upstream TLS: config', () => {
  test('portico check reports a missing file, a cert without key, a mismatched pair, an expired certificate, tls without https targets: one line each with its key path', async () => {
    const other = makeCert(clientCa, { cn: 'other', usage: 'client' });
    const expired = makeCert(clientCa, { cn: 'expired', usage: 'client', days: -1 });
    const file = await writeConfig(
      stringify({
        upstreams: {
          missing: { targets: [{ url: 'https://127.0.0.1:1' }], tls: { ca: '/nonexistent/ca.pem' } },
          half: { targets: [{ url: 'https://127.0.0.1:1' }], tls: { cert: client.cert } },
          mismatched: {
            targets: [{ url: 'https://127.0.0.1:1' }],
            tls: { cert: client.cert, key: other.key },
          },
          plain: { targets: [{ url: 'http://127.0.0.1:1' }], tls: { ca: ca.cert } },
        },
        routes: [{ path: '/*', upstream: 'missing' }],
      }),
    );
    const { code, stderr } = await runCli(['check', '--config', file]);
    assert.equal(code, 1, stderr);
    const lines = stderr.trim().split('\n');
    assert.ok(
      lines.every((l) => l.startsWith(`${file}:`)),
      stderr,
    );
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    assert.match(stderr, /upstreams\.half\.tls\.key: cert needs key/);
    assert.match(stderr, /upstreams\.plain\.tls: applies to https:\/\/ targets only/);
    assert.equal(lines.length, 2, stderr);
    // The files are read once the rest is valid: fix the two above, and they show.
    const fixed = await writeConfig(
      stringify({
        upstreams: {
          missing: { targets: [{ url: 'https://127.0.0.1:1' }], tls: { ca: '/nonexistent/ca.pem' } },
          mismatched: {
            targets: [{ url: 'https://127.0.0.1:1' }],
            tls: { cert: client.cert, key: other.key },
          },
          old: { targets: [{ url: 'https://127.0.0.1:1' }], tls: { cert: expired.cert, key: expired.key } },
        },
        routes: [{ path: '/*', upstream: 'missing' }],
      }),
    );
    const second = await runCli(['check', '--config', fixed]);
    assert.equal(second.code, 1, second.stderr);
    const again = second.stderr.trim().split('\n');
    assert.equal(again.length, 3, second.stderr);
    assert.match(second.stderr, /upstreams\.old\.tls\.cert: the certificate in .* expired on 2020-01-02/);
    assert.match(
      second.stderr,
      /upstreams\.missing\.tls\.ca: cannot read \/nonexistent\/ca\.pem: no such file/,
    );
    assert.match(second.stderr, /upstreams\.mismatched\.tls\.key: .* is not the key of the certificate in /);
  });
});
