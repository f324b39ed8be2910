import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../src/shared/config/load.js';
import { metricsSettings, tracingSettings } from '../../src/shared/config/settings.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

const registry = new MiddlewareRegistry();
const parse = (yaml: string) => parseConfigText(yaml, 'test.yaml', registry, {});
const route = (middleware: string) =>
  `routes:\n  - path: /a\n    target: http://h\n    middleware: [${middleware}]\n`;

describe('metrics and otel settings', () => {
  test('the documented defaults', () => {
    const config = parse(`${route('metrics, tracing')}metrics: {}\notel: {}\n`);
    assert.deepEqual(metricsSettings(config), { enabled: true, path: '/metrics' });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9901 });
    assert.deepEqual(tracingSettings(config), {
      enabled: true,
      endpoint: 'localhost:4317',
      tls: false,
      service_name: 'portico',
      sampling_ratio: 1,
      export_interval: 5_000,
      export_timeout: 5_000,
      max_queue_size: 2048,
    });
  });

  test('listing the middleware without a section turns the feature on with defaults', () => {
    const config = parse(route('metrics, tracing'));
    assert.equal(metricsSettings(config)?.path, '/metrics');
    assert.equal(tracingSettings(config)?.endpoint, 'localhost:4317');
  });

  test('neither listed nor configured: off; enabled: false: off', () => {
    assert.equal(metricsSettings(parse(route('logging'))), undefined);
    assert.equal(tracingSettings(parse(route('logging'))), undefined);
    const off = parse(
      `${route('metrics, tracing')}metrics:\n  prometheus:\n    enabled: false\notel:\n  enabled: false\n`,
    );
    assert.equal(metricsSettings(off), undefined);
    assert.equal(tracingSettings(off), undefined);
  });

  test('bad values are rejected with their key path', () => {
    assert.throws(() => parse(`${route('tracing')}otel:\n  sampling_ratio: 2\n`), /otel\.sampling_ratio/);
    assert.throws(
      () => parse(`${route('metrics')}metrics:\n  prometheus:\n    port: 0\n`),
      /metrics\.prometheus\.port/,
    );
    assert.throws(
      () => parse(`${route('tracing')}otel:\n  endpoint: https://x:4317\n`),
      /otel\.endpoint: must be host:port/,
    );
  });
});
