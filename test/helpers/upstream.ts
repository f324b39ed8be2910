import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { type AddressInfo, connect, type Socket } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
  /** Over TLS: the SNI name the client sent (false: none), and its certificate's CN if it sent one. */
  tls?: { servername: string | false; clientCn: string | undefined };
}

/** Serve HTTPS with these PEM files (paths); `requestCert` asks for, and requires, a client certificate signed by `clientCa`. */
export interface UpstreamTls {
  cert: string;
  key: string;
  requestCert?: { clientCa: string };
}

export interface Upstream {
  port: number;
  url: string;
  seen: SeenRequest[];
  server: Server;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void;

/** Answers with what it received, as JSON; `handler` may take over the response. */
const echo: Handler = (_req, res, seen) => {
  const body = JSON.stringify(seen);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

/**
 * A real HTTP upstream that records every request it sees: on 127.0.0.1 and a free port
 * unless `at` names another loopback address (127.0.0.2, …) or a port.
 */
export async function startUpstream(
  handler: Handler = echo,
  at: { host?: string; port?: number; tls?: UpstreamTls } = {},
): Promise<Upstream> {
  const host = at.host ?? '127.0.0.1';
  const seen: SeenRequest[] = [];
  const tls = at.tls;
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const record: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
    };
    if (tls !== undefined) {
      const socket = req.socket as TLSSocket;
      const cn = socket.getPeerCertificate().subject?.CN;
      record.tls = { servername: socket.servername ?? false, clientCn: Array.isArray(cn) ? cn[0] : cn };
    }
    seen.push(record);
    req.on('data', (chunk: Buffer) => {
      record.bodyBytes += chunk.length;
    });
    req.on('end', () => handler(req, res, record));
  };
  const server =
    tls === undefined
      ? createServer(listener)
      : createHttpsServer(
          {
            cert: readFileSync(tls.cert),
            key: readFileSync(tls.key),
            ...(tls.requestCert === undefined
              ? {}
              : { requestCert: true, rejectUnauthorized: true, ca: readFileSync(tls.requestCert.clientCa) }),
          },
          listener,
        );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `${tls === undefined ? 'http' : 'https'}://${host}:${port}`,
    seen,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Blackhole {
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * A loopback port whose connects never complete: a listener in a child process that is
 * stopped (SIGSTOP) before it accepts anything, its one-place accept queue then filled here,
 * so the kernel drops every further SYN and a client's connect hangs until it gives up.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      "require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () { process.stdout.write(this.address().port + '\\n'); });",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`blackhole listener exited (${code})`)));
  });
  child.kill('SIGSTOP');
  const fillers: Socket[] = [];
  // Connect until one connect hangs: the queue is full from then on.
  for (let i = 0; i < 16; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    fillers.push(socket);
    const connected = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      setTimeout(() => resolve(false), 300);
    });
    if (!connected) break;
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of fillers) socket.destroy();
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
