import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { base64url, SignJWT, UnsecuredJWT } from 'jose';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import {
  type IdentityProvider,
  newRsaKey,
  type SigningKey,
  signRs256,
  startIdentityProvider,
} from './helpers/idp.js';
import { freePort, type Reply, request } from './helpers/net.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
const secretKey = new TextEncoder().encode(SECRET);

function hs256(
  claims: Record<string, unknown>,
  options: { exp?: string | number; nbf?: string | number; iss?: string; aud?: string } = {},
) {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setIssuer(options.iss ?? 'portico-test')
    .setAudience(options.aud ?? 'api')
    .setExpirationTime(options.exp ?? '5m');
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(secretKey);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const seenHeaders = (reply: Reply) => reply.json<{ headers: Record<string, string> }>().headers;

let gw: RunningGateway;
let upstream: Upstream;
let idp: IdentityProvider;
let oldKey: SigningKey;
let staticKeyPem: string;
let staticPrivate: ReturnType<typeof generateKeyPairSync>['privateKey'];
let hangingIdp: ReturnType<typeof createServer>;

before(async () => {
  upstream = await startUpstream();
  oldKey = await newRsaKey('key-1');
  idp = await startIdentityProvider([oldKey]);
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  staticPrivate = pair.privateKey;
  staticKeyPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  hangingIdp = createServer(() => {}); // accepts, never answers
  await new Promise<void>((resolve) => hangingIdp.listen(0, '127.0.0.1', resolve));
  const hangingUrl = `http://127.0.0.1:${(hangingIdp.address() as { port: number }).port}`;
  const deadUrl = `http://127.0.0.1:${await freePort()}`;

  gw = await startGateway(
    {
      auth: {
        type: 'jwt',
        secret: SECRET,
        issuer: 'portico-test',
        audience: 'api',
        required_claims: ['sub'],
        clock_tolerance: '1s',
        forward_claims: { sub: 'X-User-Id', roles: 'X-User-Roles' },
      },
      routes: [
        { path: '/hs/*', target: upstream.url, middleware: ['auth'] },
        { path: '/aud-other/*', target: upstream.url, middleware: ['auth'], auth: { audience: 'other' } },
        {
          path: '/rs/*',
          target: upstream.url,
          middleware: ['auth'],
          auth: { secret: undefined, public_key: 'rs-public.pem', issuer: 'static', audience: 'api' },
        },
        {
          path: '/jwks/*',
          target: upstream.url,
          middleware: ['auth'],
          auth: { type: 'jwks', jwks_uri: `${idp.url}/jwks`, issuer: 'idp', jwks_cooldown: '100ms' },
        },
        {
          path: '/oidc/*',
          target: upstream.url,
          middleware: ['auth'],
          auth: { type: 'oidc', issuer: idp.url },
        },
        {
          path: '/jwks-dead/*',
          target: upstream.url,
          middleware: ['auth'],
          auth: { type: 'jwks', jwks_uri: `${deadUrl}/jwks`, issuer: 'idp', jwks_timeout: '500ms' },
        },
        {
          path: '/jwks-hang/*',
          target: upstream.url,
          middleware: ['auth'],
          auth: { type: 'jwks', jwks_uri: `${hangingUrl}/jwks`, issuer: 'idp', jwks_timeout: '500ms' },
        },
        { path: '/off/*', target: upstream.url, middleware: ['auth'], auth: { enabled: false } },
      ],
    },
    {
      beforeStart: async (configFile) => writeFile(join(dirname(configFile), 'rs-public.pem'), staticKeyPem),
    },
  );
});

after(async () => {
  await gw?.stop();
  await upstream?.close();
  await idp?.close();
  hangingIdp?.closeAllConnections();
  hangingIdp?.close();
});

function assertUnauthorized(reply: Reply, error: 'missing token' | 'invalid token') {
  assert.equal(reply.status, 401, reply.body);
  assert.deepEqual(reply.json(), { error });
  const challenge = String(reply.headers['www-authenticate']);
  if (error === 'missing token') assert.equal(challenge, 'Bearer realm="portico"');
  else assert.equal(challenge, 'Bearer realm="portico", error="invalid_token"');
}

describe('auth: valid tokens', () => {
  test('HS256 passes; the upstream sees the forwarded claims', async () => {
    const reply = await request(`${gw.url}/hs/x`, {
      headers: bearer(await hs256({ sub: 'alice', roles: ['a', 'b'] })),
    });
    assert.equal(reply.status, 200);
    assert.equal(seenHeaders(reply)['x-user-id'], 'alice');
    assert.equal(seenHeaders(reply)['x-user-roles'], 'a,b');
  });

  test('the Bearer scheme is case-insensitive', async () => {
    const token = await hs256({ sub: 'alice' });
    assert.equal(
      (await request(`${gw.url}/hs/x`, { headers: { authorization: `bEaReR ${token}` } })).status,
      200,
    );
  });

  test('RS256 with a public key file (relative to the config) passes', async () => {
    const token = await new SignJWT({ sub: 'bob' })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('static')
      .setAudience('api')
      .setExpirationTime('5m')
      .sign(staticPrivate);
    const reply = await request(`${gw.url}/rs/x`, { headers: bearer(token) });
    assert.equal(reply.status, 200, reply.body);
    assert.equal(seenHeaders(reply)['x-user-id'], 'bob');
  });

  test('spoofed forward-claim headers are stripped, with and without a valid token', async () => {
    const spoof = { 'x-user-id': 'admin', 'x-user-roles': 'root' };
    const withToken = await request(`${gw.url}/hs/x`, {
      headers: { ...spoof, ...bearer(await hs256({ sub: 'carol' })) },
    });
    assert.equal(seenHeaders(withToken)['x-user-id'], 'carol');
    assert.equal(
      seenHeaders(withToken)['x-user-roles'],
      undefined,
      'a claim the token lacks is not forwarded',
    );
    const disabled = await request(`${gw.url}/off/x`, { headers: spoof });
    assert.equal(disabled.status, 200);
    assert.equal(seenHeaders(disabled)['x-user-id'], undefined);
    assert.equal(seenHeaders(disabled)['x-user-roles'], undefined);
  });
});

describe('auth: rejected tokens get 401 with WWW-Authenticate', () => {
  test('missing token (no header, other scheme, empty bearer)', async () => {
    assertUnauthorized(await request(`${gw.url}/hs/x`), 'missing token');
    assertUnauthorized(
      await request(`${gw.url}/hs/x`, { headers: { authorization: 'Basic YTpi' } }),
      'missing token',
    );
    assertUnauthorized(
      await request(`${gw.url}/hs/x`, { headers: { authorization: 'Bearer   ' } }),
      'missing token',
    );
  });

  const cases: [string, () => string | Promise<string>, string?][] = [
    ['expired', () => hs256({ sub: 'a' }, { exp: Math.floor(Date.now() / 1000) - 60 })],
    ['not yet valid', () => hs256({ sub: 'a' }, { nbf: Math.floor(Date.now() / 1000) + 120 })],
    [
      'wrong signature',
      () =>
        new SignJWT({ sub: 'a' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer('portico-test')
          .setAudience('api')
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode('another-secret-that-is-also-32-bytes-long!')),
    ],
    ['wrong issuer', () => hs256({ sub: 'a' }, { iss: 'evil' })],
    ['wrong audience', () => hs256({ sub: 'a' }, { aud: 'other-api' })],
    ['route audience override', () => hs256({ sub: 'a' }), '/aud-other/x'],
    ['missing required claim', () => hs256({ name: 'no subject' })],
    [
      'alg none',
      () =>
        new UnsecuredJWT({ sub: 'a' })
          .setIssuer('portico-test')
          .setAudience('api')
          .setExpirationTime('5m')
          .encode(),
    ],
    [
      'HS256 signed with the RS256 public key as the secret',
      () =>
        new SignJWT({ sub: 'a' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer('static')
          .setAudience('api')
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(staticKeyPem)),
      '/rs/x',
    ],
    ['two segments', () => 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0'],
    ['bad base64', () => '!!!.@@@.###'],
    ['20 KB of garbage', () => 'x'.repeat(20 * 1024)],
    [
      'token with a forged header alg RS256 on the HS route',
      () => {
        const header = base64url.encode(JSON.stringify({ alg: 'RS256' }));
        const payload = base64url.encode(JSON.stringify({ sub: 'a', iss: 'portico-test', aud: 'api' }));
        return `${header}.${payload}.${base64url.encode('sig')}`;
      },
    ],
  ];
  for (const [name, make, path] of cases) {
    test(name, async () => {
      const before = upstream.seen.length;
      assertUnauthorized(
        await request(`${gw.url}${path ?? '/hs/x'}`, { headers: bearer(await make()) }),
        'invalid token',
      );
      assert.equal(upstream.seen.length, before, 'the upstream never saw the request');
    });
  }

  test('the failure reason is logged with the request id, never sent to the client', async () => {
    // debug lines are off at the default level; the client body is always generic.
    const reply = await request(`${gw.url}/hs/x`, {
      headers: { ...bearer(await hs256({ sub: 'a' }, { iss: 'evil' })), 'x-request-id': 'auth-reason-1' },
    });
    assert.doesNotMatch(reply.body, /iss|issuer|claim/i);
  });
});

describe('auth: JWKS and OIDC', () => {
  test('JWKS-verified token passes; key rotation (new kid) is picked up without restart', async () => {
    const first = await request(`${gw.url}/jwks/x`, {
      headers: bearer(await signRs256(oldKey, { sub: 'dave', iss: 'idp', aud: 'api' })),
    });
    assert.equal(first.status, 200, first.body);
    const newKey = await newRsaKey('key-2');
    idp.keys = [oldKey, newKey];
    await new Promise((r) => setTimeout(r, 150)); // past the 100ms cooldown
    const rotated = await request(`${gw.url}/jwks/x`, {
      headers: bearer(await signRs256(newKey, { sub: 'erin', iss: 'idp', aud: 'api' })),
    });
    assert.equal(rotated.status, 200, rotated.body);
    assert.equal(seenHeaders(rotated)['x-user-id'], 'erin');
  });

  test('a token signed by a key the JWKS does not publish is invalid', async () => {
    const stranger = await newRsaKey('stranger');
    assertUnauthorized(
      await request(`${gw.url}/jwks/x`, {
        headers: bearer(await signRs256(stranger, { sub: 'x', iss: 'idp', aud: 'api' })),
      }),
      'invalid token',
    );
  });

  test('OIDC discovery finds the JWKS and enforces the issuer', async () => {
    const ok = await request(`${gw.url}/oidc/x`, {
      headers: bearer(await signRs256(oldKey, { sub: 'frank', iss: idp.url, aud: 'api' })),
    });
    assert.equal(ok.status, 200, ok.body);
    const wrongIssuer = await request(`${gw.url}/oidc/x`, {
      headers: bearer(await signRs256(oldKey, { sub: 'f', iss: 'idp', aud: 'api' })),
    });
    assertUnauthorized(wrongIssuer, 'invalid token');
  });

  test('a dead or hanging JWKS endpoint gives a fast 503, never a hang', async () => {
    for (const path of ['/jwks-dead/x', '/jwks-hang/x']) {
      const started = Date.now();
      const reply = await request(`${gw.url}${path}`, {
        headers: bearer(await signRs256(oldKey, { sub: 'g', iss: 'idp', aud: 'api' })),
      });
      assert.equal(reply.status, 503, `${path}: ${reply.body}`);
      assert.deepEqual(reply.json(), { error: 'token verification unavailable' });
      assert.ok(Date.now() - started < 3_000, `${path} took ${Date.now() - started} ms`);
    }
  });
});

describe('auth: verified-token cache', () => {
  test('a cached token still expires at its exp', async () => {
    const token = await hs256({ sub: 'short' }, { exp: Math.floor(Date.now() / 1000) + 2 });
    assert.equal((await request(`${gw.url}/hs/x`, { headers: bearer(token) })).status, 200);
    assert.equal((await request(`${gw.url}/hs/x`, { headers: bearer(token) })).status, 200);
    // Past exp + the 1 s clock tolerance jose rejects it; a cache outliving exp would still answer 200.
    await new Promise((r) => setTimeout(r, 3_600));
    assertUnauthorized(await request(`${gw.url}/hs/x`, { headers: bearer(token) }), 'invalid token');
  });
});

describe('auth: iat in the future', () => {
  // Its own gateway: a 30 s tolerance, and debug logs to see the reason.
  let skew: RunningGateway;
  before(async () => {
    skew = await startGateway({
      logging: { level: 'debug' },
      auth: { type: 'jwt', secret: SECRET, issuer: 'portico-test', audience: 'api', clock_tolerance: '30s' },
      routes: [{ path: '/hs/*', target: upstream.url, middleware: ['auth'] }],
    });
  });
  after(async () => {
    await skew?.stop();
  });
  const issuedIn = (seconds: number) =>
    new SignJWT({ sub: 'skewed' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(Math.floor(Date.now() / 1000) + seconds)
      .setIssuer('portico-test')
      .setAudience('api')
      .setExpirationTime('1h')
      .sign(secretKey);

  test('iat 10 minutes ahead with a 30 s tolerance: 401, reason in the debug log, twice', async () => {
    const token = await issuedIn(600);
    for (const id of ['iat-future-1', 'iat-future-2']) {
      // Twice: a refused token must not be remembered as verified.
      const reply = await request(`${skew.url}/hs/x`, { headers: { ...bearer(token), 'x-request-id': id } });
      assertUnauthorized(reply, 'invalid token');
      const line = await skew.waitFor((r) => r.msg === 'auth failed' && r.request_id === id);
      assert.equal(line.claim, 'iat', JSON.stringify(line));
      assert.match(String(line.detail), /"iat" claim timestamp check failed/);
    }
  });

  test('iat 10 s ahead, within the tolerance: 200', async () => {
    const reply = await request(`${skew.url}/hs/x`, { headers: bearer(await issuedIn(10)) });
    assert.equal(reply.status, 200, reply.body);
  });
});

describe('auth: settings resolved once, in the primary', () => {
  test('a key file is read at start only: a worker respawned after the file is gone still verifies', async () => {
    let keyFile = '';
    const own = await startGateway(
      {
        auth: { public_key: 'key.pem', issuer: 'static', audience: 'api' },
        routes: [{ path: '/rs/*', target: upstream.url, middleware: ['auth'] }],
      },
      {
        beforeStart: async (configFile) => {
          keyFile = join(dirname(configFile), 'key.pem');
          await writeFile(keyFile, staticKeyPem);
        },
      },
    );
    try {
      const token = await new SignJWT({ sub: 'carol' })
        .setProtectedHeader({ alg: 'RS256' })
        .setIssuer('static')
        .setAudience('api')
        .setExpirationTime('5m')
        .sign(staticPrivate);
      assert.equal((await request(`${own.url}/rs/x`, { headers: bearer(token) })).status, 200);
      await rm(keyFile);
      const first = (await own.waitFor((r) => r.msg === 'worker listening')).pid as number;
      process.kill(first, 'SIGKILL');
      await own.waitFor((r) => r.msg === 'worker listening' && r.pid !== first, 10_000);
      const reply = await request(`${own.url}/rs/x`, { headers: bearer(token) });
      assert.equal(reply.status, 200, reply.body);
      assert.equal(reply.json<{ url: string }>().url, '/rs/x');
    } finally {
      await own.stop();
    }
  });
});

test('createPublicKey sanity for the static key', () => {
  assert.equal(createPublicKey(staticKeyPem).asymmetricKeyType, 'rsa');
});
