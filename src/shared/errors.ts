import { STATUS_CODES, type ServerResponse } from 'node:http';

/**
 * The one registry of errors the gateway itself answers with. Each has a stable code,
 * an HTTP status and the client-facing message; `writeError` is the only place that turns
 * them into responses. A test checks every code is documented in the README.
 */
export const ERRORS = {
  PORTICO_ERR_BAD_REQUEST: { status: 400, message: 'bad request' },
  PORTICO_ERR_BAD_PATH: { status: 400, message: 'invalid request path' },
  PORTICO_ERR_BAD_HOST: { status: 400, message: 'a request needs exactly one Host header' },
  PORTICO_ERR_MISSING_TOKEN: { status: 401, message: 'missing token' },
  PORTICO_ERR_INVALID_TOKEN: { status: 401, message: 'invalid token' },
  PORTICO_ERR_NOT_FOUND: { status: 404, message: 'not found' },
  PORTICO_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  PORTICO_ERR_REQUEST_TIMEOUT: { status: 408, message: 'request timeout' },
  PORTICO_ERR_RATE_LIMITED: { status: 429, message: 'rate limit exceeded' },
  PORTICO_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
  PORTICO_ERR_INTERNAL: { status: 500, message: 'internal gateway error' },
  PORTICO_ERR_UPSTREAM_UNAVAILABLE: { status: 502, message: 'upstream unavailable' },
  PORTICO_ERR_AUTH_UNAVAILABLE: { status: 503, message: 'token verification unavailable' },
  PORTICO_ERR_SHUTTING_DOWN: { status: 503, message: 'gateway is shutting down' },
  PORTICO_ERR_RATE_LIMIT_UNAVAILABLE: { status: 503, message: 'rate limiter unavailable' },
  PORTICO_ERR_METRICS_UNAVAILABLE: { status: 503, message: 'metrics unavailable' },
  PORTICO_ERR_NOT_READY: { status: 503, message: 'not ready' },
  PORTICO_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timeout' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** A typed error raised by the gateway or a middleware; `cause` keeps the original. */
export class GatewayError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    options?: { cause?: unknown; headers?: Record<string, string>; message?: string },
  ) {
    super(
      options?.message ?? ERRORS[code].message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'GatewayError';
    this.status = ERRORS[code].status;
    this.headers = options?.headers;
  }
  readonly headers: Record<string, string> | undefined;
}

// Bodies are serialised once: error responses are hot under attack (404 floods, 429s).
const BODIES = new Map<string, string>();
function bodyFor(message: string): string {
  let body = BODIES.get(message);
  if (body === undefined) {
    body = JSON.stringify({ error: message });
    if (BODIES.size < 256) BODIES.set(message, body);
  }
  return body;
}

/**
 * Writes `{"error": "..."}` with the error's status. If the response has already started
 * there is no honest way to report the error, so the connection is cut instead: the client
 * sees a truncated response rather than a corrupted one.
 */
export function writeError(res: ServerResponse, error: GatewayError): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = bodyFor(error.message);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...error.headers,
  };
  res.writeHead(error.status, headers);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/**
 * The whole response to a request answered on a bare socket, where there is no
 * `ServerResponse` (a request Node's parser rejected): the same JSON as `writeError`, and
 * the connection closes after it.
 */
export function rawErrorResponse(error: GatewayError, requestId: string): string {
  const body = bodyFor(error.message);
  let head = `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-request-id: ${requestId}\r\nconnection: close\r\n`;
  if (error.headers) for (const name in error.headers) head += `${name}: ${error.headers[name]}\r\n`;
  return `${head}\r\n${body}`;
}

/** Converts anything thrown by a handler into a GatewayError, keeping it as `cause`. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('PORTICO_ERR_INTERNAL', { cause: err });
}
