import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ConfigProblem } from '../../src/shared/config/load.js';
import { TlsFileReader } from '../../src/shared/config/tls-files.js';
import { makeCa, makeCert, removeCa } from '../helpers/certs.js';

describe('TLS files read while the config is validated', () => {
  const ca = makeCa();
  const other = makeCa('Other CA');
  after(() => {
    removeCa(ca);
    removeCa(other);
  });
  const at = (key: string) => ['server', 'tls', 'certificates', 0, key];

  test('a matching pair: PEM text, hash and the leaf described', () => {
    const leaf = makeCert(ca, { cn: 'api.test', altNames: ['DNS:api.test', 'DNS:www.api.test'] });
    const problems: ConfigProblem[] = [];
    const pair = new TlsFileReader(ca.dir, problems).keyPair(leaf.cert, leaf.key, at('cert'), at('key'));
    assert.deepEqual(problems, []);
    assert.ok(pair);
    assert.equal(pair.info.serial, leaf.serial);
    assert.deepEqual(pair.info.altNames, ['DNS:api.test', 'DNS:www.api.test']);
    assert.match(pair.info.subject, /CN=api\.test/);
    assert.match(pair.cert.hash, /^[0-9a-f]{64}$/);
    assert.ok(pair.info.notAfter > Date.now());
  });

  test('relative paths resolve against the config directory', () => {
    makeCert(ca, { cn: 'rel.test', name: 'rel' });
    const problems: ConfigProblem[] = [];
    const pair = new TlsFileReader(ca.dir, problems).keyPair('rel.pem', 'rel-key.pem', at('cert'), at('key'));
    assert.deepEqual(problems, []);
    assert.equal(pair?.cert.file, join(ca.dir, 'rel.pem'));
  });

  test('a key of another certificate, an expired certificate, a missing file, not PEM: one problem each at its key', () => {
    const a = makeCert(ca, { cn: 'a.test' });
    const b = makeCert(other, { cn: 'b.test' });
    const old = makeCert(ca, { cn: 'old.test', days: 0 });
    const junk = join(ca.dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const problems: ConfigProblem[] = [];
    const reader = new TlsFileReader(ca.dir, problems);
    assert.equal(reader.keyPair(a.cert, b.key, at('cert'), at('key')), undefined);
    assert.equal(reader.keyPair(old.cert, old.key, at('cert'), at('key')), undefined);
    assert.equal(reader.keyPair('missing.pem', a.key, at('cert'), at('key')), undefined);
    assert.equal(reader.caBundle(junk, ['upstreams', 'billing', 'tls', 'ca']), undefined);
    assert.deepEqual(
      problems.map((p) => [p.path.join('.'), p.message]),
      [
        ['server.tls.certificates.0.key', `${b.key} is not the key of the certificate in ${a.cert}`],
        [
          'server.tls.certificates.0.cert',
          `the certificate in ${old.cert} expired on 2020-01-02T00:00:00.000Z`,
        ],
        ['server.tls.certificates.0.cert', `cannot read ${join(ca.dir, 'missing.pem')}: no such file`],
        ['upstreams.billing.tls.ca', `${junk} has no PEM certificate`],
      ],
    );
  });
});
