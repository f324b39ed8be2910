import { readFileSync } from 'node:fs';
import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import { createServer, type Server, Socket } from 'node:net';

/** A plain TCP listener holding `port` on 127.0.0.1, as another program would. */
export function occupyPort(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Below the kernel's ephemeral range: a port handed out here is never also the local port of
 * an outgoing connection (the test's own clients, a gateway's upstream sockets), which would
 * make the listen it was chosen for fail with EADDRINUSE now and then.
 */
const FIXED_PORTS = (() => {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    // not Linux: keep the usual bound
  }
  return { from: 10_000, to: Math.max(10_001, Math.min(low, 65_536) - 1) };
})();
/** Ports this process handed out: never twice, since the first may not be listening yet. */
const given = new Set<number>();

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port that was free a moment ago on 127.0.0.1, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FIXED_PORTS.from + Math.floor(Math.random() * (FIXED_PORTS.to - FIXED_PORTS.from));
    if (given.has(port) || !(await tryListen(port))) continue;
    given.add(port);
    return port;
  }
  throw new Error('no free port found below the ephemeral range');
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP/1.1 request on a fresh connection, body buffered; rejects on socket errors. */
export function request(
  url: string,
  options: {
    method?: string;
    headers?: OutgoingHttpHeaders;
    body?: string | Buffer;
    timeoutMs?: number;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body) as T,
          });
        });
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends a raw request line + headers (for paths `fetch`/`http` would normalise). */
export function rawRequest(port: number, text: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('raw request timeout')));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
    });
    socket.on('end', () => resolve(data));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
    socket.connect(port, '127.0.0.1', () => socket.write(text));
  });
}

/**
 * Opens a WebSocket-style upgrade on a fresh connection (the handshake headers only, no frames):
 * resolves with the 101 response and the raw socket; rejects on any other answer or after
 * `timeoutMs`.
 */
/** The request headers of a WebSocket handshake (a fixed key: the tests check no accept hash). */
export const UPGRADE_HEADERS = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
} as const;

export function upgradeRequest(
  url: string,
  timeoutMs = 5_000,
): Promise<{ res: IncomingMessage; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: UPGRADE_HEADERS });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no upgrade within ${timeoutMs} ms`)));
    req.on('upgrade', (res, socket: Socket) => {
      req.setTimeout(0);
      resolve({ res, socket });
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
