/*
 * A load-generator thread (load.ts): on many-core layouts the bench runs one per client core,
 * so the client is never what sets the pace. Loads its client, says `ready`, runs on `start`
 * (all threads start together) and posts its RawRun back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ClientSpec, runClient } from './load-client.js';

const port = parentPort;
if (port === null) throw new Error('load-thread.ts runs as a worker thread');
port.once('message', () => {
  runClient(workerData as ClientSpec).then(
    (run) => port.postMessage({ run }, [run.latencies.buffer as ArrayBuffer]),
    (error: unknown) => port.postMessage({ error: (error as Error).message }),
  );
});
port.postMessage('ready');
