import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { pino } from 'pino';
import { jsonString, requestLineWriter } from '../../src/worker/middleware/request-log.js';

/** A pino logger as the worker makes one (see src/shared/logger.ts), writing into `chunks`. */
function logger(level = 'info') {
  const chunks: string[] = [];
  const base = pino(
    {
      level,
      base: { pid: 42, hostname: 'h', role: 'worker', worker: 0 },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    { write: (chunk: string) => void chunks.push(chunk) },
  );
  return { log: base.child({ route: '/users/:id' }), chunks };
}

const withoutTime = (line: string) => line.replace(/"time":"[^"]+"/, '"time":"T"');

const FIELDS: Record<string, unknown>[] = [
  {
    request_id: 'a5d8c3f0-7b6e-4a0b-9f7c-1234567890ab',
    trace_id: '0af7651916cd43dd8448eb211c80319c',
    method: 'GET',
    path: '/users/42',
    status: 200,
    duration_ms: 1.234,
    client_ip: '127.0.0.1',
  },
  {
    request_id: 'client "chosen"\\id\n',
    method: 'POST',
    path: '/grüße/日本/\u0001/\ud800',
    status: 503,
    duration_ms: 0,
    client_ip: '::1',
    aborted: true,
    tries: 2,
    upstream_tries: ['127.0.0.1:1 refused', '127.0.0.1:2 ok'],
  },
];

function serialise(fields: Record<string, unknown>): string {
  let out = '';
  for (const [key, value] of Object.entries(fields))
    out += `,${jsonString(key)}:${typeof value === 'string' ? jsonString(value) : JSON.stringify(value)}`;
  return out;
}

test('a request line is what pino writes for the same record, byte for byte but the time', async () => {
  for (const fields of FIELDS) {
    const warn = (fields.status as number) >= 500;
    const fast = logger();
    requestLineWriter(fast.log)(warn, serialise(fields));
    assert.equal(fast.chunks.length, 0, 'written at the end of the turn');
    await turn();
    const reference = logger();
    if (warn) reference.log.warn(fields, 'request');
    else reference.log.info(fields, 'request');
    assert.equal(fast.chunks.length, 1);
    assert.equal(withoutTime(fast.chunks[0] as string), withoutTime(reference.chunks[0] as string));
    assert.doesNotThrow(() => JSON.parse(String(fast.chunks[0])));
  }
});

test("one turn's lines go out as one write, in order; a level below the logger's is dropped", async () => {
  const { log, chunks } = logger();
  const write = requestLineWriter(log);
  write(false, ',"n":1');
  write(true, ',"n":2');
  write(false, ',"n":3');
  await turn();
  assert.equal(chunks.length, 1);
  assert.deepEqual(
    (chunks[0] as string)
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { n: number }).n),
    [1, 2, 3],
  );
  const quiet = logger('warn');
  const writeQuiet = requestLineWriter(quiet.log);
  writeQuiet(false, ',"n":1');
  writeQuiet(true, ',"n":2');
  await turn();
  assert.deepEqual(
    quiet.chunks.map((c) => (JSON.parse(c) as { n: number; level: number }).level),
    [40],
  );
});
