import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { warnExpiringCertificates } from '../../src/primary/tls-expiry.js';
import type { Plan } from '../../src/shared/plan/types.js';
import { testUpstreamPlan } from '../helpers/plans.js';

test('an upstream client certificate that expires within 14 days is a warning too', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const now = Date.parse('2026-12-01T00:00:00Z');
  const day = 86_400_000;
  const withCert = (name: string, days: number) => {
    const plan = testUpstreamPlan({}, { name });
    return {
      ...plan,
      tls: { ...plan.tls, certInfo: { name: `${name}-client`, notAfter: now + days * day } },
    };
  };
  const plan = {
    serverTls: null,
    upstreams: [withCert('billing', 5), withCert('users', 60)],
  } as unknown as Plan;
  warnExpiringCertificates(plan, pino(sink), now);
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg, l.source]),
    [
      [
        40,
        'the certificate of upstreams.billing.tls (billing-client) expires in 5 day(s)',
        'upstreams.billing.tls',
      ],
    ],
  );
});
