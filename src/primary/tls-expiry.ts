import type { Logger } from 'pino';
import { EXPIRY_WARNING_DAYS } from '../shared/config/tls-files.js';
import type { Plan } from '../shared/plan/types.js';
import { tlsCertificateEntries } from '../shared/plan/tls-certificates.js';
import { upstreamCertificateExpiries } from '../shared/plan/upstream-certificates.js';

const DAY_MS = 86_400_000;

/**
 * Issue 15: a served certificate, or an upstream client certificate, that expires within
 * `EXPIRY_WARNING_DAYS` is a warning at start and after each reload (an expired one never
 * gets this far: validation refuses it).
 */
export function warnExpiringCertificates(plan: Plan, logger: Logger, now = Date.now()): void {
  for (const entry of [...tlsCertificateEntries(plan), ...upstreamCertificateExpiries(plan.upstreams)]) {
    const days = (entry.notAfter - now) / DAY_MS;
    if (days >= EXPIRY_WARNING_DAYS) continue;
    logger.warn(
      {
        source: entry.source,
        name: entry.name,
        ...('file' in entry ? { file: entry.file } : {}),
        expires: new Date(entry.notAfter).toISOString(),
      },
      `the certificate of ${entry.source} (${entry.name}) expires in ${Math.max(0, Math.floor(days))} day(s)`,
    );
  }
}
