import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
} from 'node:http';
import { createSecureServer, type Http2ServerRequest, type Http2Session } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Plan, ServerTlsPlan } from '../../shared/plan/types.js';
import { countHandshakeError, countHandshakeFailure } from './handshake-errors.js';
import { clientAuthOptions, contextOptions, type SniTable, sniTable } from './secure-contexts.js';

/*
 * Issue 15: the worker's listener. Its kind is chosen once, from the plan it starts with:
 * plain HTTP (exactly as before TLS existed), HTTPS, or HTTP/2 with HTTP/1.1 on the same port
 * (ALPN). No request pays for a kind it is not. Changing the kind (or `http2`) replaces the
 * workers (reload.ts); certificates, CAs, `min_version` and `client_auth` are swapped in place.
 */

export type RequestListener = (req: IncomingMessage, res: never) => void;

export interface EdgeServer {
  /** An http.Server, https.Server or Http2SecureServer: the http.Server API the worker uses. */
  server: Server;
  /** Checks the TLS material of a new plan and returns what puts it in force (a no-op without TLS). */
  prepareTls(next: Plan): () => void;
  /** Graceful: idle HTTP/1 connections close, HTTP/2 sessions get a GOAWAY. */
  closeIdle(): void;
  /**
   * HTTP/2 sessions get a GOAWAY: their streams finish, new ones go to a new connection. Race
   * free by design, unlike closing an idle HTTP/1 connection a client may be sending on.
   */
  goAway(): void;
  closeAll(): void;
}

/** Streams an h2 client may open at once on one connection (Node's default is unbounded). */
const MAX_CONCURRENT_STREAMS = 128;

export function createEdgeServer(
  plan: Plan,
  options: ServerOptions,
  onRequest: (req: IncomingMessage, res: never) => void,
): EdgeServer {
  const tls = plan.serverTls;
  if (tls === null) {
    const server = createHttpServer(options, onRequest as never);
    return {
      server,
      prepareTls: () => () => {},
      closeIdle: () => server.closeIdleConnections(),
      goAway: () => {},
      closeAll: () => server.closeAllConnections(),
    };
  }
  let sni: SniTable = sniTable(tls);
  let requireCert = tls.clientAuth === 'require';
  // What is in force, to leave the context (and its session tickets) alone on other reloads.
  let inForce = JSON.stringify(tls);
  const secure = {
    ...contextOptions(tls, tls.certificates[0] as ServerTlsPlan['certificates'][number]),
    ...clientAuthOptions(tls),
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: never) => void) =>
      cb(null, sni.lookup(servername) as never),
  };
  let server: Server;
  const sessions = new Set<Http2Session>();
  if (tls.http2) {
    const h2 = createSecureServer(
      {
        ...secure,
        allowHTTP1: true,
        maxHeaderListPairs: plan.server.max_headers + 8,
        settings: {
          maxHeaderListSize: plan.server.max_header_size,
          maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
        },
      },
      ((req: IncomingMessage | Http2ServerRequest, res: never) => {
        if (req.httpVersionMajor === 2) fromHttp2(req as Http2ServerRequest);
        onRequest(req as IncomingMessage, res);
      }) as never,
    );
    // An h2 connection is idle-bounded as a whole (its streams have no per-request timers):
    // no frame for `request_timeout` closes it.
    h2.setTimeout(plan.server.request_timeout);
    h2.on('session', (session: Http2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    // HTTP/1.1 on the h2 port is served by node:http's connection handling, which reads these
    // from the server object.
    server = h2 as unknown as Server;
    Object.assign(server, {
      maxHeaderSize: options.maxHeaderSize,
      keepAliveTimeout: options.keepAliveTimeout,
      requestTimeout: options.requestTimeout,
      headersTimeout: options.headersTimeout,
      connectionsCheckingInterval: options.connectionsCheckingInterval,
    });
  } else {
    server = createHttpsServer({ ...options, ...secure }, onRequest as never);
  }
  const goAway = () => {
    for (const session of sessions) session.close();
  };
  const sockets = new Set<Socket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    // `client_auth: require` (see clientAuthOptions): before any byte of a request is read.
    if (requireCert && !socket.authorized) {
      countHandshakeFailure(
        socket.getPeerX509Certificate() === undefined ? 'no_client_certificate' : 'bad_client_certificate',
      );
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => void countHandshakeError(err));
  return {
    server,
    prepareTls(next) {
      const nextTls = next.serverTls;
      // Another listener kind is not swapped in place: the workers are replaced (reload.ts).
      if (nextTls === null || nextTls.http2 !== tls.http2) return () => {};
      const text = JSON.stringify(nextTls);
      if (text === inForce) return () => {};
      const first = nextTls.certificates[0] as ServerTlsPlan['certificates'][number];
      const defaults = { ...contextOptions(nextTls, first), ...clientAuthOptions(nextTls) };
      // Built here, so a pair OpenSSL refuses fails the prepare and nothing is swapped.
      createSecureContext(defaults);
      const table = sniTable(nextTls);
      return () => {
        (server as unknown as TlsServer).setSecureContext(defaults);
        sni = table;
        requireCert = nextTls.clientAuth === 'require';
        inForce = text;
      };
    },
    closeIdle() {
      server.closeIdleConnections?.();
      goAway();
    },
    goAway,
    closeAll() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/**
 * An h2 request as the rest of the gateway reads an HTTP/1.1 one: `Host` from `:authority`
 * and no pseudo-header left in `req.headers` (they are not header fields and must not be
 * forwarded).
 */
function fromHttp2(req: Http2ServerRequest): void {
  const headers = req.headers;
  // Own properties first: the compat API reads (and writes) both in the header object.
  Object.defineProperty(req, 'method', { value: req.method, writable: true, enumerable: true });
  Object.defineProperty(req, 'url', { value: req.url, writable: true, enumerable: true });
  const authority = headers[':authority'];
  if (headers.host === undefined && typeof authority === 'string') headers.host = authority;
  delete headers[':method'];
  delete headers[':path'];
  delete headers[':scheme'];
  delete headers[':authority'];
  if (headers[':protocol'] !== undefined) delete headers[':protocol'];
  // h2 frames a body without Content-Length or Transfer-Encoding; the proxy (and the upstream
  // hop, which is HTTP/1.1) needs one of them to know there is one.
  if (headers['content-length'] === undefined && !req.stream.endAfterHeaders)
    headers['transfer-encoding'] = 'chunked';
}
