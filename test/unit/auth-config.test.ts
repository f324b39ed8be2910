import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/shared/config/load.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'portico-auth-config-'));
const file = join(dir, 'config.yaml');
const ecPem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();
writeFileSync(join(dir, 'ec.pem'), ecPem);
writeFileSync(join(dir, 'garbage.pem'), 'not a key');

function problems(yaml: string, registry = new MiddlewareRegistry()): string[] {
  try {
    parseConfigText(yaml, file, registry, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.lines.map((l) => l.replace(/^[^ ]*\.yaml:\d+:\d+: /, ''));
  }
  return [];
}

const route = (extra = '') => `routes:\n  - path: /a\n    target: http://h\n    middleware: [auth]\n${extra}`;

describe('auth config validation (key path and reason)', () => {
  const table: [name: string, yaml: string, expected: string[]][] = [
    [
      'no key material',
      route(),
      [
        'routes[0].middleware: type jwt needs auth.secret (HS256/384/512) or auth.public_key (RS/PS/ES/EdDSA)',
      ],
    ],
    ['HS secret is enough', `auth:\n  secret: s\n${route()}`, []],
    [
      'secret with an RS algorithm',
      `auth:\n  secret: s\n  algorithms: [RS256]\n${route()}`,
      ['auth.algorithms: RS256 cannot be verified with a secret; use public_key'],
    ],
    [
      'both secret and public key',
      `auth:\n  secret: s\n  public_key: ec.pem\n${route()}`,
      ['auth.public_key: set either secret (HS*) or public_key, not both'],
    ],
    [
      'unreadable key file',
      `auth:\n  public_key: missing.pem\n${route()}`,
      [`auth.public_key: cannot read public key file ${join(dir, 'missing.pem')}: ENOENT`],
    ],
    [
      'not a PEM key',
      `auth:\n  public_key: garbage.pem\n${route()}`,
      ['auth.public_key: is not a valid PEM public key'],
    ],
    ['EC key relative to the config, default ES256', `auth:\n  public_key: ec.pem\n${route()}`, []],
    [
      'EC P-256 key with RS256',
      `auth:\n  public_key: ec.pem\n  algorithms: [RS256]\n${route()}`,
      ['auth.algorithms: RS256 cannot be verified with this ec key'],
    ],
    [
      'alg none is not an algorithm',
      `auth:\n  secret: s\n  algorithms: [none]\n${route()}`,
      [
        'auth.algorithms[0]: Invalid option: expected one of "HS256"|"HS384"|"HS512"|"RS256"|"RS384"|"RS512"|"PS256"|"PS384"|"PS512"|"ES256"|"ES384"|"ES512"|"EdDSA"',
      ],
    ],
    ['jwks without uri', `auth:\n  type: jwks\n${route()}`, ['auth.jwks_uri: type jwks needs auth.jwks_uri']],
    [
      'jwks with HS algorithms',
      `auth:\n  type: jwks\n  jwks_uri: http://idp/jwks\n  algorithms: [HS256]\n${route()}`,
      ['auth.algorithms: HS256 cannot come from a key set; use type jwt with a secret'],
    ],
    ['oidc without issuer', `auth:\n  type: oidc\n${route()}`, ['auth.issuer: type oidc needs auth.issuer']],
    [
      'unknown verifier type',
      `auth:\n  type: keycloak\n${route()}`,
      ['auth.type: unknown verifier type "keycloak" (built in: jwt, jwks, oidc)'],
    ],
    [
      'route override error names the route',
      `auth:\n  secret: s\n${route('    auth:\n      type: jwks\n')}`,
      ['routes[0].auth.jwks_uri: type jwks needs auth.jwks_uri'],
    ],
    [
      'bad forward header name',
      `auth:\n  secret: s\n  forward_claims:\n    sub: "X User"\n${route()}`,
      ['auth.forward_claims.sub: must be an HTTP header name'],
    ],
    ['unknown auth key', `auth:\n  secret: s\n  secrett: x\n${route()}`, ['auth.secrett: unknown key']],
    [
      'global section problems are reported once',
      `auth:\n  type: oidc\n${route()}  - path: /b\n    target: http://h\n    middleware: [auth]\n`,
      ['auth.issuer: type oidc needs auth.issuer'],
    ],
    [
      'auth settings are not checked for routes without auth',
      `auth:\n  type: oidc\nroutes:\n  - path: /a\n    target: http://h\n`,
      [],
    ],
  ];
  for (const [name, yaml, expected] of table) {
    test(name, () => assert.deepEqual(problems(yaml), expected));
  }

  test('a registered verifier type is accepted', () => {
    const registry = new MiddlewareRegistry();
    registry.registerVerifier('keycloak', () => ({ verify: () => Promise.resolve({}) }));
    assert.deepEqual(
      problems(`auth:\n  type: keycloak\n  options:\n    url: http://kc\n${route()}`, registry),
      [],
    );
  });
});
