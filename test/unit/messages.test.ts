import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPrimaryToWorker, isWorkerToPrimary } from '../../src/shared/messages.js';

const metric = {
  name: 'm',
  help: 'h',
  type: 'counter',
  aggregator: 'sum',
  values: [{ value: 1, labels: {} }],
};

const recent = {
  time: 1,
  route: '/a',
  method: 'GET',
  status: 502,
  code: 'PORTICO_ERR_UPSTREAM_UNAVAILABLE',
  request_id: 'r',
};

test('IPC messages are checked where they arrive', () => {
  const toPrimary: [unknown, boolean][] = [
    [{ type: 'portico:ready', port: 8080 }, true],
    [{ type: 'portico:ready' }, false],
    [{ type: 'portico:listen-failed', host: '0.0.0.0', port: 8080, code: 'EADDRINUSE' }, true],
    [{ type: 'portico:listen-failed', host: '0.0.0.0', port: 8080 }, false],
    [{ type: 'portico:metrics-snapshot', id: 3, metrics: [metric] }, true],
    [{ type: 'portico:metrics-snapshot', id: null, metrics: [] }, true],
    [{ type: 'portico:metrics-snapshot', id: 3, metrics: [{ name: 'm' }] }, false],
    [{ type: 'portico:metrics-snapshot', id: '3', metrics: [] }, false],
    [{ type: 'portico:metrics-scrape', id: 1 }, true],
    [
      {
        type: 'portico:dashboard-snapshot',
        id: 1,
        bounds: [0.1],
        routes: [{ path: '/a', method: 'GET', statuses: { 200: 3 }, buckets: [1, 3] }],
        errors: [recent],
        loop_delay_ms: 2,
        status: {},
      },
      true,
    ],
    [
      {
        type: 'portico:dashboard-snapshot',
        id: 1,
        bounds: [],
        routes: [],
        errors: [],
        loop_delay_ms: null,
        status: {},
      },
      true,
    ],
    [
      {
        type: 'portico:dashboard-snapshot',
        id: 1,
        bounds: [],
        routes: [{ path: '/a', method: 'GET', statuses: { 200: '3' }, buckets: [] }],
        errors: [],
        loop_delay_ms: null,
        status: {},
      },
      false,
    ],
    [
      {
        type: 'portico:dashboard-snapshot',
        id: 1,
        bounds: [],
        routes: [],
        errors: [{ ...recent, status: '502' }],
        loop_delay_ms: null,
        status: {},
      },
      false,
    ],
    [
      { type: 'portico:dashboard-snapshot', id: 1, bounds: [], routes: [], errors: [], loop_delay_ms: null },
      false,
    ],
    [{ type: 'prom-client:getMetricsRes' }, false],
    [null, false],
    ['portico:ready', false],
  ];
  for (const [message, ok] of toPrimary)
    assert.equal(isWorkerToPrimary(message), ok, JSON.stringify(message));
  const toWorker: [unknown, boolean][] = [
    [{ type: 'portico:shutdown' }, true],
    [{ type: 'portico:metrics-collect', id: 1 }, true],
    [{ type: 'portico:metrics-collect' }, false],
    [{ type: 'portico:dashboard-collect', id: 1 }, true],
    [{ type: 'portico:dashboard-collect' }, false],
    [{ type: 'portico:metrics-text', id: 1, text: 'x', contentType: 'text/plain' }, true],
    [{ type: 'portico:metrics-text', id: 1, error: 'timeout' }, true],
    [{ type: 'portico:metrics-text', id: 1 }, false],
    [{ type: 'other' }, false],
  ];
  for (const [message, ok] of toWorker) assert.equal(isPrimaryToWorker(message), ok, JSON.stringify(message));
});
