import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { certificateInfo } from '../../src/shared/config/tls-files.js';
import { certificateName } from '../../src/shared/config/server-tls.js';
import type { ServerTlsPlan } from '../../src/shared/plan/types.js';
import { stripClientCertHeaders } from '../../src/worker/tls/client-cert.js';
import { handshakeErrorReason } from '../../src/worker/tls/handshake-errors.js';
import { sniTable } from '../../src/worker/tls/secure-contexts.js';
import { makeCa, makeCert, removeCa } from '../helpers/certs.js';

describe('edge TLS, pure parts', () => {
  const ca = makeCa();
  after(() => removeCa(ca));
  const plan = (specs: { cn: string; altNames: string[] }[]): ServerTlsPlan => ({
    certificates: specs.map((spec, index) => {
      const made = makeCert(ca, { ...spec, name: `sni-${index}` });
      const certPem = readFileSync(made.cert, 'utf8');
      const info = certificateInfo(certPem);
      return {
        certPem,
        keyPem: readFileSync(made.key, 'utf8'),
        certFile: made.cert,
        source: `server.tls.certificates[${index}]`,
        name: certificateName(info),
        dnsNames: info.altNames.filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4).toLowerCase()),
        info,
      };
    }),
    minVersion: 'TLSv1.2',
    http2: false,
    clientAuth: 'none',
    clientCaPem: null,
    forwardClientCert: false,
  });

  test('SNI: exact names, one-label wildcards, case-insensitive; the first certificate is the default', () => {
    const table = sniTable(
      plan([
        { cn: 'default.test', altNames: ['DNS:default.test', 'DNS:shared.test'] },
        { cn: 'api.test', altNames: ['DNS:api.test', 'DNS:*.apps.test', 'DNS:shared.test'] },
      ]),
    );
    assert.equal(table.lookup('default.test'), undefined);
    assert.notEqual(table.lookup('api.test'), undefined);
    assert.notEqual(table.lookup('API.Test'), undefined);
    assert.notEqual(table.lookup('one.apps.test'), undefined);
    assert.equal(table.lookup('two.one.apps.test'), undefined);
    assert.equal(table.lookup('apps.test'), undefined);
    // Two certificates with one name: the earlier wins (here the default).
    assert.equal(table.lookup('shared.test'), undefined);
    assert.equal(table.lookup('unknown.test'), undefined);
  });

  test('certificate names for the metric: the first DNS SAN, else the CN', () => {
    assert.equal(
      certificateName({ subject: 'CN=x.test', altNames: ['IP:127.0.0.1', 'DNS:y.test'] } as never),
      'y.test',
    );
    assert.equal(certificateName({ subject: 'O=Org, CN=x.test', altNames: [] } as never), 'x.test');
  });

  test('handshake error reasons', () => {
    const reason = (code: string, message = '') =>
      handshakeErrorReason(Object.assign(new Error(message), { code }));
    assert.equal(reason('ERR_SSL_UNSUPPORTED_PROTOCOL'), 'protocol_version');
    assert.equal(reason('ERR_SSL_HTTP_REQUEST'), 'plain_http');
    assert.equal(reason('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), 'no_client_certificate');
    assert.equal(reason('ECONNRESET', 'socket hang up'), 'other');
  });

  test('client-sent X-Client-Cert-* fields are removed, whatever their case; others stay', () => {
    const headers: Record<string, string> = {
      'x-client-cert-subject': 'CN=admin',
      'x-client-cert-anything': 'x',
      'x-client-certificate': 'kept (not the prefix)',
      'x-request-id': 'r',
    };
    stripClientCertHeaders(headers, [
      'X-Client-Cert-Subject',
      'CN=admin',
      'x-client-cert-ANYTHING',
      'x',
      'x-client-certificate',
      'kept',
      'X-Request-Id',
      'r',
    ]);
    assert.deepEqual(Object.keys(headers), ['x-client-certificate', 'x-request-id']);
  });
});
