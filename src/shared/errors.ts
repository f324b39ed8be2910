import { STATUS_CODES, type ServerResponse } from 'node:http';

/** An answer to a client: its HTTP status and the body's `error` text. */
interface Answer {
  readonly status: number;
  readonly message: string;
}

/**
 * An error for whoever runs the gateway (operator or CLI user): what its stderr lines report,
 * and the exit code when the process ends on it. The lines themselves say the particulars.
 */
interface Failure {
  readonly exit: number;
  readonly message: string;
}

/**
 * The one registry of errors the gateway produces, each with a stable code: the answers it
 * writes to clients (`writeError` is the only place that turns them into responses) and the
 * errors that stop a command or the instance (`exitReport` is the only place that turns them
 * into stderr lines and an exit code). A test checks every code is documented in the README.
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
  PORTICO_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  PORTICO_ERR_RATE_LIMITED: { status: 429, message: 'rate limit exceeded' },
  PORTICO_ERR_QUOTA_EXCEEDED: { status: 429, message: 'quota exceeded' },
  PORTICO_ERR_BANNED: { status: 429, message: 'banned: too many refused requests' },
  PORTICO_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
  PORTICO_ERR_INTERNAL: { status: 500, message: 'internal gateway error' },
  PORTICO_ERR_UPSTREAM_UNAVAILABLE: { status: 502, message: 'upstream unavailable' },
  PORTICO_ERR_UPSTREAM_TLS: { status: 502, message: 'upstream TLS handshake failed' },
  PORTICO_ERR_AUTH_UNAVAILABLE: { status: 503, message: 'token verification unavailable' },
  PORTICO_ERR_SHUTTING_DOWN: { status: 503, message: 'gateway is shutting down' },
  PORTICO_ERR_RATE_LIMIT_UNAVAILABLE: { status: 503, message: 'rate limiter unavailable' },
  PORTICO_ERR_METRICS_UNAVAILABLE: { status: 503, message: 'metrics unavailable' },
  PORTICO_ERR_NOT_READY: { status: 503, message: 'not ready' },
  PORTICO_ERR_NO_HEALTHY_UPSTREAM: { status: 503, message: 'no healthy upstream' },
  PORTICO_ERR_CIRCUIT_OPEN: { status: 503, message: 'upstream circuit open' },
  PORTICO_ERR_UPSTREAM_OVERFLOW: { status: 503, message: 'upstream request limit reached' },
  PORTICO_ERR_TOO_MANY_CONNECTIONS: { status: 503, message: 'too many connections' },
  PORTICO_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timeout' },
  PORTICO_ERR_CONFIG: {
    exit: 1,
    message: 'the config is invalid: one line per problem, with its place and key path',
  },
  PORTICO_ERR_CONFIG_UNREADABLE: {
    exit: 1,
    message: 'the config file cannot be read: not found, a directory, no permission, or not UTF-8',
  },
  PORTICO_ERR_LISTEN: {
    exit: 1,
    message: 'a listener cannot listen: the line names the address, the setting and why',
  },
  PORTICO_ERR_CRASH_LOOP: {
    exit: 1,
    message: 'workers keep dying: the instance stops instead of respawning',
  },
  PORTICO_ERR_DEV_TOKEN: {
    exit: 1,
    message: '`portico token` cannot sign: no `auth.secret`, a bad `--ttl` or `--claim`',
  },
  PORTICO_ERR_DEV_CERT: {
    exit: 1,
    message: '`portico cert` cannot write: no `openssl`, or the directory cannot be written',
  },
  PORTICO_ERR_ENTRY: { exit: 1, message: 'the `--entry` file cannot be loaded, or never calls `start()`' },
  PORTICO_ERR_RELOAD: {
    exit: 1,
    message:
      '`portico reload`: the instance refused the new config (one line per problem) and runs the old one',
  },
  PORTICO_ERR_ADMIN_UNREACHABLE: {
    exit: 1,
    message: '`portico reload`: the admin API cannot be reached, wants a token, or answered something else',
  },
  PORTICO_ERR_USAGE: {
    exit: 2,
    message: 'unknown command or option, or an option the command does not take',
  },
} as const satisfies Record<string, Answer | Failure>;

export type ErrorCode = keyof typeof ERRORS;
/** The codes answered to clients over HTTP. */
export type AnswerCode = { [C in ErrorCode]: (typeof ERRORS)[C] extends Answer ? C : never }[ErrorCode];
/** The codes that stop a command or the instance with an exit code. */
export type FailureCode = Exclude<ErrorCode, AnswerCode>;

/** Every error the gateway throws for someone to read carries its table code. */
export class PorticoError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A typed error raised by the gateway or a middleware, answered to the client; `cause` keeps the original. */
export class GatewayError extends PorticoError {
  declare readonly code: AnswerCode;
  readonly status: number;
  readonly headers: Record<string, string> | undefined;
  constructor(
    code: AnswerCode,
    options?: { cause?: unknown; headers?: Record<string, string>; message?: string },
  ) {
    super(
      code,
      options?.message ?? ERRORS[code].message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.status = ERRORS[code].status;
    this.headers = options?.headers;
  }
}

/**
 * An error that stops a command or the instance: `lines` is what its reader sees on stderr
 * (by default `portico: <message>`), `exitCode` comes from the table.
 */
export class OperatorError extends PorticoError {
  declare readonly code: FailureCode;
  readonly exitCode: number;
  readonly lines: string[];
  constructor(code: FailureCode, message: string, options?: ErrorOptions & { lines?: string[] }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = ERRORS[code].exit;
    this.lines = options?.lines ?? [`portico: ${message}`];
  }
}

/**
 * The stderr lines and exit code for an error that ends the process: the CLI and `start()`
 * both report through here. An error that names itself with a `code` (an OperatorError, or a
 * system error such as EACCES) is expected in operation: its line(s), no stack. Anything else
 * is a bug, and its stack is what a bug report needs.
 */
export function exitReport(err: unknown): { lines: string[]; exitCode: number } {
  if (err instanceof OperatorError) return { lines: err.lines, exitCode: err.exitCode };
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string')
    return { lines: [`portico: ${err.message}`], exitCode: 1 };
  return { lines: [`portico: ${(err as Error | null)?.stack ?? String(err)}`], exitCode: 1 };
}

/** Prints `exitReport(err)` to stderr and exits with its code. */
export function exitWith(err: unknown): never {
  const { lines, exitCode } = exitReport(err);
  process.stderr.write(`${lines.join('\n')}\n`);
  process.exit(exitCode);
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

let serverErrorObserver: ((res: ServerResponse, error: GatewayError) => void) | undefined;

/**
 * Tells `observer` of every 5xx `writeError` writes (or cuts a started response with): the
 * dashboard's recent errors. One per process; only the error path pays for it.
 */
export function observeServerErrors(observer: (res: ServerResponse, error: GatewayError) => void): void {
  serverErrorObserver = observer;
}

/**
 * Writes `{"error": "..."}` with the error's status. If the response has already started
 * there is no honest way to report the error, so the connection is cut instead: the client
 * sees a truncated response rather than a corrupted one.
 */
export function writeError(res: ServerResponse, error: GatewayError): void {
  if (error.status >= 500) serverErrorObserver?.(res, error);
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
