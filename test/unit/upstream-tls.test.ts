import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { UpstreamTlsPlan } from '../../src/shared/plan/types.js';
import { certificateName, upstreamCertificateExpiries } from '../../src/shared/plan/upstream-certificates.js';
import { upstreamTlsOptions, upstreamTlsReason } from '../../src/shared/upstream-tls.js';
import { testUpstreamPlan } from '../helpers/plans.js';

/* Issue 15, upstream side: the pure parts (which errors are TLS failures, the connect options). */

const VERIFIED: UpstreamTlsPlan = {
  ca: null,
  cert: null,
  key: null,
  certInfo: null,
  servername: null,
  insecureSkipVerify: false,
};

describe('upstream TLS failures', () => {
  const cases: [string, { code?: unknown; message?: string }, string | undefined][] = [
    ['self-signed', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'unknown_ca'],
    ['private CA', { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'unknown_ca'],
    ['wrong name', { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'name_mismatch'],
    ['expired', { code: 'CERT_HAS_EXPIRED' }, 'expired'],
    ['TLS 1.3 alert', { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }, 'handshake_refused'],
    [
      'TLS 1.2 alert',
      {
        code: 'EPROTO',
        message: 'error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure',
      },
      'handshake_refused',
    ],
    ['another protocol error', { code: 'EPROTO', message: 'write EPROTO' }, undefined],
    ['refused', { code: 'ECONNREFUSED' }, undefined],
    ['reset', { code: 'ECONNRESET', message: 'socket hang up' }, undefined],
    ['no code', { message: 'boom' }, undefined],
  ];
  for (const [what, err, reason] of cases) {
    test(`${what}: ${reason ?? 'not TLS'}`, () => assert.equal(upstreamTlsReason(err), reason));
  }
});

describe('upstream TLS options', () => {
  test('verified by default; SNI and the name checked are the target name', () => {
    assert.deepEqual(upstreamTlsOptions(VERIFIED, 'billing.internal'), {
      rejectUnauthorized: true,
      servername: 'billing.internal',
    });
  });

  test("an IP target: no SNI, never the client's Host (servername '')", () => {
    assert.deepEqual(upstreamTlsOptions(VERIFIED, undefined), { rejectUnauthorized: true, servername: '' });
  });

  test('servername overrides the target; ca, cert and key are passed; insecure turns verification off', () => {
    const options = upstreamTlsOptions(
      { ...VERIFIED, ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'api.test', insecureSkipVerify: true },
      'other.test',
    );
    assert.deepEqual(options, {
      rejectUnauthorized: false,
      servername: 'api.test',
      ca: 'CA',
      cert: 'CERT',
      key: 'KEY',
    });
  });

  test('an IP servername is checked but not sent as SNI (RFC 6066)', () => {
    const options = upstreamTlsOptions({ ...VERIFIED, servername: '10.0.0.7' }, 'billing.internal');
    assert.equal(options.servername, '');
    assert.equal(typeof options.checkServerIdentity, 'function');
  });
});

describe('upstream client certificates for the expiry gauge', () => {
  test('named by the first DNS SAN, else the CN', () => {
    assert.equal(
      certificateName({ altNames: ['URI:spiffe://x', 'DNS:gw.test'], subject: 'CN=gw' }),
      'gw.test',
    );
    assert.equal(certificateName({ altNames: [], subject: 'O=Acme, CN=gateway-client' }), 'gateway-client');
  });

  test('one entry per upstream with a client certificate, source upstreams.<name>.tls', () => {
    const withCert = testUpstreamPlan(
      {},
      { name: 'billing', tls: { ...VERIFIED, certInfo: { name: 'gw', notAfter: 1_000 } } },
    );
    assert.deepEqual(upstreamCertificateExpiries([withCert, testUpstreamPlan({}, { name: 'plain' })]), [
      { name: 'gw', source: 'upstreams.billing.tls', notAfter: 1_000 },
    ]);
  });
});
