import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { makeCa, makeCert, removeCa, type TestCa, type TestCert } from './helpers/certs.js';
import { type RunningGateway, runCli, startGateway, writeConfig } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, request, sleep } from './helpers/net.js';
import { type OtlpReceiver, startOtlpReceiver } from './helpers/otlp-receiver.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Issue 15, the edge: HTTPS, SNI, HTTP/2, client certificates, rotation, the redirect port,
 * the TLS metrics and `portico check`, all with real certificates (test/helpers/certs.ts) and
 * real clients (Node's tls/https/http2, Debian's curl).
 */

const ENTRY = fileURLToPath(new URL('./fixtures/client-cert-entry.js', import.meta.url));
const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The serial of the certificate the server presented. */
  serial: string;
  alpn: string | false | null;
}

/** One HTTPS/1.1 request on a fresh TLS connection to 127.0.0.1. */
function httpsGet(
  port: number,
  path: string,
  tls: ConnectionOptions & { servername?: string },
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { host: tls.servername ?? '127.0.0.1', ...headers },
        ...tls,
      },
      (res) => {
        const socket = res.socket as import('node:tls').TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber;
        const alpn = socket.alpnProtocol;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, serial, alpn }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** A TLS handshake alone: the served certificate's serial, or the error. */
function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ serial: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      const alpn = socket.alpnProtocol;
      socket.end();
      resolve({ serial, alpn });
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timeout')));
    socket.on('error', reject);
  });
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr }),
    );
  });
}

const seenHeaders = (answer: { body: string }) =>
  (JSON.parse(answer.body) as { headers: Record<string, string> }).headers;

async function scrape(admin: string) {
  const reply = await request(`${admin}/metrics`);
  assert.equal(reply.status, 200);
  return parseMetrics(reply.body);
}

/** An upstream that accepts WebSocket-style upgrades and echoes the tunnel's bytes. */
async function startUpgradeUpstream(): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => res.end('no upgrade'));
  server.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('TLS at the edge: HTTPS, SNI, HTTP/2, client certificates, redirect', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let a: TestCert;
  let b: TestCert;
  let client: TestCert;
  let untrusted: TestCert;
  let gw: RunningGateway;
  let upstream: Upstream;
  let ws: { server: Server; url: string };
  let receiver: OtlpReceiver;
  let admin: string;
  let redirectPort: number;
  let token: string;
  let caPem: string;

  before(async () => {
    ca = makeCa();
    otherCa = makeCa('Untrusted CA');
    a = makeCert(ca, { cn: 'a.test', altNames: ['DNS:a.test', 'DNS:localhost', 'IP:127.0.0.1'] });
    b = makeCert(ca, { cn: 'b.test', altNames: ['DNS:b.test', 'DNS:*.b.test'] });
    client = makeCert(ca, {
      cn: 'billing-client',
      altNames: ['URI:spiffe://test/billing'],
      usage: 'client',
    });
    untrusted = makeCert(otherCa, { cn: 'mallory', usage: 'client' });
    caPem = await readText(ca.cert);
    upstream = await startUpstream();
    ws = await startUpgradeUpstream();
    receiver = await startOtlpReceiver();
    redirectPort = await freePort();
    const adminPort = await freePort();
    admin = `http://127.0.0.1:${adminPort}`;
    token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(SECRET));
    gw = await startGateway(
      {
        server: {
          tls: {
            certificates: [
              { cert: a.cert, key: a.key },
              { cert: b.cert, key: b.key },
            ],
            http2: true,
            client_auth: 'request',
            client_ca: ca.cert,
            forward_client_cert: true,
          },
          http_redirect_port: redirectPort,
        },
        admin: { port: adminPort },
        auth: { type: 'jwt', secret: SECRET },
        otel: { endpoint: receiver.endpoint, export_interval: '100ms' },
        metrics: { prometheus: { enabled: true } },
        routes: [
          {
            path: '/full/*',
            target: upstream.url,
            middleware: ['tracing', 'logging', 'metrics', 'auth', 'ratelimit', 'client-cert'],
            rate_limit: { requests_per_second: 100, burst: 100 },
          },
          { path: '/ws', target: ws.url },
          { path: '/*', target: upstream.url, middleware: ['client-cert'] },
        ],
      },
      { entry: ENTRY },
    );
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    ws?.server.close();
    await receiver?.close();
    removeCa(ca);
    removeCa(otherCa);
  });

  test('HTTPS works, and X-Forwarded-Proto says https', async () => {
    const answer = await httpsGet(gw.port, '/plain', { ca: caPem, servername: 'a.test' });
    assert.equal(answer.status, 200);
    assert.equal(seenHeaders(answer)['x-forwarded-proto'], 'https');
  });

  test('SNI picks the certificate whose SAN matches; the first is the default', async () => {
    assert.equal((await handshake(gw.port, { ca: caPem, servername: 'a.test' })).serial, a.serial);
    assert.equal((await handshake(gw.port, { ca: caPem, servername: 'b.test' })).serial, b.serial);
    assert.equal((await handshake(gw.port, { ca: caPem, servername: 'x.b.test' })).serial, b.serial);
    // An unknown name, and no name at all (an IP address), get the first.
    const unknown = await handshake(gw.port, {
      ca: caPem,
      servername: 'nobody.test',
      checkServerIdentity: () => undefined,
    });
    assert.equal(unknown.serial, a.serial);
    assert.equal((await handshake(gw.port, { ca: caPem })).serial, a.serial);
  });

  test('TLS 1.1 is refused by the server (counted as protocol_version)', async () => {
    const before = sum(await scrape(admin), 'portico_tls_handshake_errors_total', {
      reason: 'protocol_version',
    });
    // SECLEVEL=0 lets this client's OpenSSL offer TLS 1.1 at all: the refusal must be the server's.
    await assert.rejects(
      handshake(gw.port, {
        ca: caPem,
        servername: 'a.test',
        minVersion: 'TLSv1.1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      }),
      (err: NodeJS.ErrnoException) =>
        /alert protocol version|ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION/i.test(`${err.code} ${err.message}`),
    );
    let after = before;
    for (let i = 0; i < 20 && after === before; i++) {
      await sleep(100);
      after = sum(await scrape(admin), 'portico_tls_handshake_errors_total', { reason: 'protocol_version' });
    }
    assert.equal(after, before + 1);
  });

  test('curl --http2 gets h2 and curl --http1.1 gets HTTP/1.1 through the full middleware chain', async () => {
    const common = [
      '--cacert',
      ca.cert,
      '--resolve',
      `a.test:${gw.port}:127.0.0.1`,
      '-H',
      `authorization: Bearer ${token}`,
      '-D',
      '-',
      '-w',
      '\nversion=%{http_version}',
    ];
    for (const [flag, version] of [
      ['--http2', '2'],
      ['--http1.1', '1.1'],
    ] as const) {
      const out = await curl([flag, ...common, `https://a.test:${gw.port}/full/curl?v=${version}`]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, new RegExp(`version=${version.replace('.', '\\.')}$`));
      assert.match(out.stdout, /^HTTP\/(2|1\.1) 200/m);
      // ratelimit's header, and the request id every answer carries.
      assert.match(out.stdout, /^ratelimit: /im);
      assert.match(out.stdout, /^x-request-id: /im);
      const seen = upstream.seen.find((s) => s.url === `/full/curl?v=${version}`);
      assert.ok(seen, `the upstream saw the ${version} request`);
      assert.match(String(seen.headers.traceparent), /^00-[0-9a-f]{32}-/);
      assert.equal(seen.headers.host, `a.test:${gw.port}`);
      assert.ok(!Object.keys(seen.headers).some((name) => name.startsWith(':')), 'no pseudo-header upstream');
    }
    // Without a token auth refuses on h2 too.
    const refused = await curl([
      '--http2',
      '--cacert',
      ca.cert,
      '--resolve',
      `a.test:${gw.port}:127.0.0.1`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{http_version}',
      `https://a.test:${gw.port}/full/curl`,
    ]);
    assert.equal(refused.stdout, '401 2');
    // logging, metrics and tracing saw both protocols.
    await gw.waitFor((r) => r.msg === 'request' && r.path === '/full/curl' && r.status === 401);
    const metrics = await scrape(admin);
    assert.ok(sum(metrics, 'gateway_requests_total', { path: '/full/*', status: '200' }) >= 2);
    await receiver.waitForSpans((spans) => spans.filter((s) => s.kind === 2).length >= 3);
  });

  test('HTTP/2 pseudo-header fields do not count toward server.max_headers', async () => {
    const session = http2Connect(`https://a.test:${gw.port}`, {
      ca: caPem,
      servername: 'a.test',
      host: '127.0.0.1',
    } as never);
    const statusWith = (count: number) =>
      new Promise<number>((resolve, reject) => {
        const headers: Record<string, string> = { ':path': '/plain', ':method': 'GET' };
        for (let i = 0; i < count; i++) headers[`x-field-${i}`] = 'v';
        const stream = session.request(headers);
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
    try {
      // The default max_headers is 100: 100 header fields pass, whatever the 4 pseudo-headers.
      assert.equal(await statusWith(100), 200);
      assert.equal(await statusWith(101), 431);
    } finally {
      session.close();
    }
  });

  test("Node's http2 client gets h2 through the full chain", async () => {
    const session = http2Connect(`https://a.test:${gw.port}`, {
      ca: caPem,
      servername: 'a.test',
      host: '127.0.0.1',
    } as never);
    try {
      const { status, body, alpn } = await new Promise<{
        status: number;
        body: string;
        alpn: string | false | null;
      }>((resolve, reject) => {
        const stream = session.request({
          ':path': '/full/node?x=1',
          ':method': 'POST',
          authorization: `Bearer ${token}`,
          'content-type': 'text/plain',
        });
        let status = 0;
        let text = '';
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (text += c));
        stream.on('end', () => resolve({ status, body: text, alpn: session.alpnProtocol ?? false }));
        stream.on('error', reject);
        stream.end('hello over h2');
      });
      assert.equal(alpn, 'h2');
      assert.equal(status, 200);
      const seen = JSON.parse(body) as {
        method: string;
        url: string;
        bodyBytes: number;
        headers: Record<string, string>;
      };
      assert.equal(seen.method, 'POST');
      assert.equal(seen.url, '/full/node?x=1');
      assert.equal(seen.bodyBytes, 'hello over h2'.length);
      assert.equal(seen.headers['x-seen-client-cert'], 'none');
    } finally {
      session.close();
    }
  });

  test('a WebSocket upgrade works over TLS with HTTP/1.1', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gw.port, ca: caPem, servername: 'a.test' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      socket.write(
        'GET /ws HTTP/1.1\r\nhost: a.test\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      let data = '';
      await new Promise<void>((resolve, reject) => {
        socket.on('data', (chunk: Buffer) => {
          data += chunk.toString('latin1');
          if (data.includes('\r\n\r\n') && !data.includes('ping')) socket.write('ping');
          if (data.includes('ping')) resolve();
        });
        socket.once('error', reject);
        setTimeout(() => reject(new Error(`no echo; got ${JSON.stringify(data)}`)), 5_000);
      });
      assert.match(data, /^HTTP\/1\.1 101/);
    } finally {
      socket.destroy();
    }
  });

  test('client_auth request: a verified certificate is in contextOf(req).clientCert and forwarded', async () => {
    const answer = await httpsGet(
      gw.port,
      '/cert',
      {
        ca: caPem,
        servername: 'a.test',
        cert: await readText(client.cert),
        key: await readText(client.key),
      },
      { 'x-client-cert-subject': 'CN=admin', 'X-Client-Cert-Extra': 'spoofed' },
    );
    assert.equal(answer.status, 200);
    const headers = seenHeaders(answer);
    assert.deepEqual(JSON.parse(headers['x-seen-client-cert'] as string), {
      subject: 'CN=billing-client',
      uris: ['spiffe://test/billing'],
    });
    assert.equal(headers['x-client-cert-subject'], 'CN=billing-client');
    assert.equal(headers['x-client-cert-uri'], 'spiffe://test/billing');
    const { X509Certificate } = await import('node:crypto');
    const fingerprint = new X509Certificate(await readText(client.cert)).fingerprint256;
    assert.equal(headers['x-client-cert-fingerprint'], fingerprint.replaceAll(':', '').toLowerCase());
    assert.equal(headers['x-client-cert-extra'], undefined);
  });

  test('client_auth request: no certificate, or an untrusted one, proceeds without one, and spoofed headers never arrive', async () => {
    const spoofed = {
      'x-client-cert-subject': 'CN=admin',
      'x-client-cert-fingerprint': 'ab',
      'X-Client-Cert-URI': 'spiffe://evil',
    };
    for (const tls of [
      { ca: caPem, servername: 'a.test' },
      {
        ca: caPem,
        servername: 'a.test',
        cert: await readText(untrusted.cert),
        key: await readText(untrusted.key),
      },
    ]) {
      const answer = await httpsGet(gw.port, '/nocert', tls, spoofed);
      assert.equal(answer.status, 200);
      const headers = seenHeaders(answer);
      assert.equal(headers['x-seen-client-cert'], 'none');
      for (const name of Object.keys(headers)) assert.ok(!name.startsWith('x-client-cert-'), name);
    }
  });

  test('the redirect port answers 308 to https on the TLS port, same host, path and query', async () => {
    const reply = await request(`http://127.0.0.1:${redirectPort}/some/path?q=1&r=2`, {
      headers: { host: `a.test:${redirectPort}` },
    });
    assert.equal(reply.status, 308);
    assert.equal(reply.headers.location, `https://a.test:${gw.port}/some/path?q=1&r=2`);
    const bad = await request(`http://127.0.0.1:${redirectPort}/`, { headers: { host: 'a.test/evil' } });
    assert.equal(bad.status, 400);
  });

  test('portico_tls_certificate_expiry_timestamp_seconds has every served certificate', async () => {
    const metrics = await scrape(admin);
    const { X509Certificate } = await import('node:crypto');
    for (const [cert, name, source] of [
      [a, 'a.test', 'server.tls.certificates[0]'],
      [b, 'b.test', 'server.tls.certificates[1]'],
    ] as const) {
      const notAfter = Date.parse(new X509Certificate(await readText(cert.cert)).validTo) / 1000;
      assert.equal(
        sum(metrics, 'portico_tls_certificate_expiry_timestamp_seconds', { name, source }),
        notAfter,
      );
    }
  });

  test('plain HTTP on the TLS port is refused (counted as plain_http)', async () => {
    await request(`http://127.0.0.1:${gw.port}/`).catch(() => undefined);
    await sleep(200);
    assert.ok(sum(await scrape(admin), 'portico_tls_handshake_errors_total', { reason: 'plain_http' }) >= 1);
  });
});

const readText = (file: string) => readFile(file, 'utf8');

describe('TLS at the edge: client_auth require', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let gw: RunningGateway;
  let upstream: Upstream;
  let admin: string;
  const creds: Record<string, TestCert> = {};

  before(async () => {
    ca = makeCa();
    otherCa = makeCa('Untrusted CA');
    creds.server = makeCert(ca, { cn: 'localhost' });
    creds.client = makeCert(ca, { cn: 'good-client', usage: 'client' });
    creds.untrusted = makeCert(otherCa, { cn: 'bad-client', usage: 'client' });
    upstream = await startUpstream();
    const adminPort = await freePort();
    admin = `http://127.0.0.1:${adminPort}`;
    gw = await startGateway({
      server: {
        tls: {
          certificates: [{ cert: creds.server.cert, key: creds.server.key }],
          client_auth: 'require',
          client_ca: ca.cert,
          min_version: 'TLSv1.3',
        },
      },
      admin: { port: adminPort },
      metrics: { prometheus: { enabled: true } },
      routes: [{ path: '/*', target: upstream.url }],
    });
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    removeCa(ca);
    removeCa(otherCa);
  });

  const attempt = async (cert?: TestCert) =>
    httpsGet(gw.port, '/', {
      ca: await readText(ca.cert),
      servername: 'localhost',
      ...(cert ? { cert: await readText(cert.cert), key: await readText(cert.key) } : {}),
    });

  test('without a client certificate no request is served (the connection closes at the handshake)', async () => {
    await assert.rejects(attempt(), /certificate required|alert|socket hang up|ECONNRESET/i);
  });

  test('with an untrusted client certificate no request is served', async () => {
    await assert.rejects(attempt(creds.untrusted), /unknown ca|alert|socket hang up|ECONNRESET/i);
  });

  test('with a valid client certificate the request is served', async () => {
    assert.equal((await attempt(creds.client)).status, 200);
  });

  test('the failures are counted by reason', async () => {
    let metrics = await scrape(admin);
    for (
      let i = 0;
      i < 20 && sum(metrics, 'portico_tls_handshake_errors_total', { reason: 'bad_client_certificate' }) < 1;
      i++
    ) {
      await sleep(100);
      metrics = await scrape(admin);
    }
    assert.ok(sum(metrics, 'portico_tls_handshake_errors_total', { reason: 'no_client_certificate' }) >= 1);
    assert.ok(sum(metrics, 'portico_tls_handshake_errors_total', { reason: 'bad_client_certificate' }) >= 1);
  });
});

describe('TLS at the edge: certificate rotation', () => {
  let ca: TestCa;
  let gw: RunningGateway;
  let upstream: Upstream;
  let dir: string;

  before(async () => {
    ca = makeCa();
    upstream = await startUpstream();
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    removeCa(ca);
  });

  /** Replaces `target` the way deploy tools do: write beside it, then rename over it. */
  async function replace(source: string, target: string): Promise<void> {
    await copyFile(source, `${target}.tmp`);
    await rename(`${target}.tmp`, target);
  }

  test('new files are served to new handshakes without a failed one; a mismatched pair is refused', async () => {
    const first = makeCert(ca, { cn: 'localhost', name: 'first', days: 5 });
    const second = makeCert(ca, { cn: 'localhost', name: 'second' });
    const third = makeCert(ca, { cn: 'localhost', name: 'third' });
    dir = ca.dir;
    const certFile = join(dir, 'served.pem');
    const keyFile = join(dir, 'served-key.pem');
    await copyFile(first.cert, certFile);
    await copyFile(first.key, keyFile);
    gw = await startGateway({
      server: { tls: { certificates: [{ cert: certFile, key: keyFile }], http2: true } },
      routes: [{ path: '/*', target: upstream.url }],
    });
    // 5 days left: a warning at start.
    await gw.waitFor(
      (r) =>
        r.level === 40 &&
        String(r.msg).includes('server.tls.certificates[0]') &&
        String(r.msg).includes('expires in'),
    );
    const listening = () => gw.records().filter((r) => r.msg === 'worker listening').length;
    const workersBefore = listening();
    const caPem = await readText(ca.cert);

    // A steady stream of new connections: 20 a second.
    const serials: string[] = [];
    const protocols = new Set<string | false | null>();
    const failures: string[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        const started = Date.now();
        handshake(gw.port, { ca: caPem, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }).then(
          (r) => {
            serials.push(r.serial);
            protocols.add(r.alpn);
          },
          (err: Error) => failures.push(err.message),
        );
        await sleep(Math.max(0, 50 - (Date.now() - started)));
      }
    })();
    try {
      await sleep(1_000);
      assert.ok(serials.length > 0 && serials.every((s) => s === first.serial));
      await replace(second.cert, certFile);
      await replace(second.key, keyFile);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !serials.includes(second.serial)) await sleep(50);
      assert.ok(serials.includes(second.serial), 'new connections see the new certificate within 10 s');
      await sleep(1_000);
      assert.equal(serials.at(-1), second.serial);

      // A certificate whose key is not beside it: refused, the running pair keeps serving.
      await replace(third.cert, certFile);
      const refused = await gw.waitFor(
        (r) => r.level === 50 && /server\.tls\.certificates\[0\]\.key: .* is not the key/.test(String(r.msg)),
        10_000,
      );
      assert.ok(String(refused.msg).includes(keyFile), 'the line names the file');
      await gw.waitFor((r) => r.msg === 'reload refused: the running config stays');
      await sleep(1_000);
      assert.equal(serials.at(-1), second.serial);
    } finally {
      running = false;
      await load;
      await sleep(300);
    }
    assert.deepEqual(failures, [], 'no handshake failed');
    // The swapped context keeps offering h2.
    assert.deepEqual([...protocols], ['h2']);
    assert.equal(listening(), workersBefore, 'no worker was replaced');
  });
});

describe('TLS at the edge: portico check and portico cert', () => {
  test('a mismatched pair, an expired certificate, a missing file and client_auth without client_ca are one line each', async () => {
    const ca = makeCa();
    try {
      const good = makeCert(ca, { cn: 'good.test' });
      const other = makeCert(ca, { cn: 'other.test' });
      const expired = makeCert(ca, { cn: 'old.test', days: -1 });
      const file = await writeConfig({
        server: {
          tls: {
            certificates: [
              { cert: good.cert, key: other.key },
              { cert: expired.cert, key: expired.key },
              { cert: join(ca.dir, 'missing.pem'), key: good.key },
            ],
            client_auth: 'require',
          },
        },
        routes: [{ path: '/', target: 'http://127.0.0.1:1' }],
      });
      const { code, stderr } = await runCli(['check', '--config', file]);
      assert.equal(code, 1);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 4, stderr);
      assert.ok(
        lines.every((l) => l.startsWith(`${file}:`)),
        stderr,
      );
      assert.match(stderr, /server\.tls\.certificates\[0\]\.key: .* is not the key of the certificate/);
      assert.match(stderr, /server\.tls\.certificates\[1\]\.cert: the certificate in .* expired on /);
      assert.match(stderr, /server\.tls\.certificates\[2\]\.cert: cannot read .*missing\.pem: no such file/);
      assert.match(stderr, /server\.tls\.client_auth: client_auth: require needs server\.tls\.client_ca/);
      assert.ok(!stderr.includes('    at '), 'no stack trace');
    } finally {
      removeCa(ca);
    }
  });

  test('a valid TLS config passes; http_redirect_port without tls does not', async () => {
    const ca = makeCa();
    try {
      const good = makeCert(ca, { cn: 'good.test' });
      const ok = await writeConfig({
        server: { tls: { certificates: [{ cert: good.cert, key: good.key }], http2: true } },
        routes: [{ path: '/', target: 'http://127.0.0.1:1' }],
      });
      const passed = await runCli(['check', '--config', ok]);
      assert.equal(passed.code, 0, passed.stderr);
      const bad = await writeConfig({
        server: { http_redirect_port: 8081 },
        routes: [{ path: '/', target: 'http://127.0.0.1:1' }],
      });
      const refused = await runCli(['check', '--config', bad]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /server\.http_redirect_port: redirects to HTTPS need server\.tls/);
    } finally {
      removeCa(ca);
    }
  });
});

describe('portico cert', () => {
  test('writes a CA and a localhost certificate the gateway serves; without openssl, one line and exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-cert-'));
    const upstream = await startUpstream();
    let gw: RunningGateway | undefined;
    try {
      const made = await runCli(['cert', '--dir', dir]);
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /certificates: \[\{ cert: .*localhost\.pem, key: .*localhost-key\.pem \}\]/);
      gw = await startGateway({
        server: {
          tls: { certificates: [{ cert: join(dir, 'localhost.pem'), key: join(dir, 'localhost-key.pem') }] },
        },
        routes: [{ path: '/*', target: upstream.url }],
      });
      const ca = await readText(join(dir, 'ca.pem'));
      assert.equal((await httpsGet(gw.port, '/', { ca, servername: 'localhost' })).status, 200);
      // An IP literal is in the certificate too.
      assert.equal((await httpsGet(gw.port, '/', { ca })).status, 200);
      const missing = await runCli(['cert', '--dir', dir], { OPENSSL: '/nonexistent/openssl' });
      assert.equal(missing.code, 1);
      assert.equal(
        missing.stderr,
        'portico cert: /nonexistent/openssl not found: install OpenSSL (or set OPENSSL)\n',
      );
    } finally {
      await gw?.stop();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('without TLS', () => {
  test('client-sent X-Client-Cert-* headers are stripped on plain HTTP too', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ path: '/*', target: upstream.url }] });
    try {
      const reply = await request(`${gw.url}/x`, {
        headers: {
          'X-Client-Cert-Subject': 'CN=admin',
          'x-client-cert-fingerprint': 'ab',
          'x-client-cert-uri': 'spiffe://evil',
        },
      });
      assert.equal(reply.status, 200);
      const headers = seenHeaders(reply);
      for (const name of Object.keys(headers)) assert.ok(!name.startsWith('x-client-cert-'), name);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });
});
