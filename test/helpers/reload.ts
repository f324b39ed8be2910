import { Agent, request as httpRequest } from 'node:http';
import { type RunningGateway, startGateway } from './gateway.js';
import { freePort, request, sleep } from './net.js';
import { startUpstream, type Upstream } from './upstream.js';

/*
 * What the reload tests share: an instance started with its config file and admin URL at
 * hand, the admin views they poll, and a bounded client that records every answer.
 */

/** An upstream that answers 200 with its name, so each response says where it came from. */
export function named(name: string): Promise<Upstream> {
  return startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
    res.end(name);
  });
}

export interface Instance {
  gw: RunningGateway;
  file: string;
  admin: string;
  /** The config with `server`/`admin` as the gateway was started with; edits keep them. */
  base: Record<string, unknown>;
}

export async function start(
  config: Record<string, unknown>,
  options: { workers?: number; entry?: string; beforeStart?: (file: string) => Promise<void> } = {},
): Promise<Instance> {
  const server = { port: await freePort(), host: '127.0.0.1', workers: options.workers ?? 2 };
  const base = {
    ...config,
    server: { ...server, ...(config.server as object) },
    admin: { ...(config.admin as object), port: await freePort() },
  };
  let file = '';
  const gw = await startGateway(base, {
    workers: options.workers ?? 2,
    ...(options.entry === undefined ? {} : { entry: options.entry }),
    beforeStart: async (f) => {
      file = f;
      await options.beforeStart?.(f);
    },
  });
  const admin = (await gw.waitFor((r) => r.msg === 'admin listener ready')).url as string;
  return { gw, file, admin, base };
}

export const routeTo = (target: string) => ({ routes: [{ path: '/*', target }] });

export async function configView(admin: string): Promise<Record<string, unknown>> {
  return (await request(`${admin}/admin/config`)).json();
}

/** Waits until the admin API reports a hash other than `old`; returns it. */
export async function hashChange(admin: string, old: string, timeoutMs = 10_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const hash = (await configView(admin)).hash as string;
    if (hash !== old) return hash;
    await sleep(20);
  }
  throw new Error(`hash still ${old} after ${timeoutMs} ms`);
}

export interface WorkerRow {
  pid: number | null;
  config_hash: string | null;
  listening: boolean;
  restarts: number;
}

export async function workerList(admin: string): Promise<WorkerRow[]> {
  return (await request(`${admin}/admin/workers`)).json<{ workers: WorkerRow[] }>().workers;
}

export async function waitForWorkers(admin: string, until: (rows: WorkerRow[]) => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rows = await workerList(admin);
    if (until(rows)) return;
    if (Date.now() > deadline) throw new Error(`workers never got there: ${JSON.stringify(rows)}`);
    await sleep(50);
  }
}

export interface Sample {
  startedAt: number;
  endedAt: number;
  fresh: boolean;
  status: number;
  upstream: string;
}

/**
 * A bounded client: `rate` requests per second until stopped, half on one keep-alive agent,
 * half on fresh connections. Records every answer and every connection error.
 */
export function load(url: string, rate: number) {
  const samples: Sample[] = [];
  const errors: string[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  let inFlight = 0;
  let n = 0;
  const one = () => {
    const fresh = n++ % 2 === 0;
    const startedAt = performance.now();
    inFlight++;
    const req = httpRequest(url, { agent: fresh ? false : agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        inFlight--;
        samples.push({
          startedAt,
          endedAt: performance.now(),
          fresh,
          status: res.statusCode ?? 0,
          upstream: Buffer.concat(chunks).toString(),
        });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => {
      inFlight--;
      errors.push(
        `${fresh ? 'fresh' : 'kept-alive'} connection, ${Math.round(performance.now())}: ${err.message}`,
      );
    });
    req.end();
  };
  const timer = setInterval(() => {
    for (let i = 0; i < rate / 50; i++) one();
  }, 20);
  return {
    samples,
    errors,
    async stop() {
      clearInterval(timer);
      while (inFlight > 0) await sleep(10);
      agent.destroy();
    },
  };
}
