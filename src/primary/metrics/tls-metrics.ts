import { Gauge, type Registry } from 'prom-client';
import type { Plan } from '../../shared/plan/types.js';
import { tlsCertificateEntries } from '../../shared/plan/tls-certificates.js';

/** Issue 15: when each certificate the gateway presents expires, from the plan in force. */
export function registerTlsMetrics(registry: Registry, inForce: () => Plan): void {
  new Gauge({
    name: 'portico_tls_certificate_expiry_timestamp_seconds',
    help: 'When a certificate the gateway presents expires (notAfter, Unix seconds), by name (first DNS SAN, else CN) and source (the config key naming it).',
    labelNames: ['name', 'source'] as const,
    registers: [registry],
    collect() {
      // Rebuilt each scrape: a rotated or removed certificate's series goes with it.
      this.reset();
      for (const entry of tlsCertificateEntries(inForce()))
        this.set({ name: entry.name, source: entry.source }, entry.notAfter / 1000);
    },
  });
}
