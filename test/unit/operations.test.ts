import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../src/shared/config/load.js';
import { GATEWAY_METRIC_NAMES } from '../../src/worker/middleware/metrics/instruments.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

describe('the Grafana dashboard (grafana/dashboards/portico.json)', () => {
  const dashboard = JSON.parse(read('grafana/dashboards/portico.json')) as { panels: Panel[] };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  test('references only metrics Portico exports', () => {
    const known = new Set<string>(GATEWAY_METRIC_NAMES);
    for (const expr of exprs) {
      for (const [name] of expr.matchAll(/\bgateway_[a-z_]+\b/g)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        assert.ok(known.has(name) || known.has(base), `${name} in ${expr}`);
      }
    }
  });

  test('shows requests, latency percentiles, 4xx/5xx, rate limiting, in-flight and restarts', () => {
    const all = exprs.join('\n');
    for (const needle of [
      'gateway_requests_total',
      'histogram_quantile(0.99, sum by (le) (rate(gateway_request_duration_seconds_bucket',
      'status=~"4.."',
      'status=~"5.."',
      'gateway_ratelimit_decisions_total',
      'gateway_requests_in_flight',
      'gateway_worker_restarts_total',
    ])
      assert.ok(all.includes(needle), needle);
  });
});

test("the compose stack's gateway config is valid", () => {
  const config = parseConfigText(
    read('deploy/portico.yaml'),
    'deploy/portico.yaml',
    new MiddlewareRegistry(),
    {},
  );
  assert.deepEqual(config.admin, { host: '0.0.0.0', port: 9901 });
  assert.equal(config.metrics?.prometheus.enabled, true);
  assert.equal(config.otel?.endpoint, 'jaeger:4317');
});
