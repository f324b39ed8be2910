import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError, rawErrorResponse } from '../shared/errors.js';
import type { Plan } from '../shared/plan/types.js';
import { canonicalIp } from './client-ip.js';

const TIMEOUT = new GatewayError('PORTICO_ERR_REQUEST_TIMEOUT');
const HEADERS_TOO_LARGE = new GatewayError('PORTICO_ERR_HEADERS_TOO_LARGE');
const BAD_REQUEST = new GatewayError('PORTICO_ERR_BAD_REQUEST');

/** The answer to a request Node's HTTP parser (or its request timer) rejected. */
function errorFor(code: string | undefined): GatewayError {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return TIMEOUT;
  // Node 24 also reports more header fields than `maxHeadersCount` as a header overflow.
  if (code === 'HPE_HEADER_OVERFLOW') return HEADERS_TOO_LARGE;
  return BAD_REQUEST;
}

/**
 * Where a plan's refused requests are logged: beside the requests no route takes, which
 * request-handler.ts logs when any route logs requests (`logging` is per route, and these
 * belong to none). Null when none does. Made once per plan, not per refusal.
 */
const accessLogs = new WeakMap<Plan, Logger | null>();
function accessLogOf(plan: Plan, logger: Logger): Logger | null {
  let log = accessLogs.get(plan);
  if (log === undefined) {
    log = plan.routes.some((route) => route.middleware.includes('logging'))
      ? logger.child({ route: '(unmatched)' })
      : null;
    accessLogs.set(plan, log);
  }
  return log;
}

/**
 * The server's `clientError` listener: answers from the error table, on the raw socket since
 * there is no `ServerResponse`, unless a response is already under way on the connection
 * (writing then would corrupt it, so it is cut instead, as Node itself does). An answer is
 * logged as unmatched requests are (no method or path: the parser never got them), by the
 * tree in force (`current`).
 */
export function clientErrorListener(current: () => { plan: Plan; logger: Logger }) {
  return function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const error = errorFor(err.code);
    const requestId = randomUUID();
    socket.end(rawErrorResponse(error, requestId));
    const { plan, logger } = current();
    const peer = (socket as Socket).remoteAddress;
    accessLogOf(plan, logger)?.info(
      {
        request_id: requestId,
        status: error.status,
        client_ip: peer === undefined ? undefined : canonicalIp(peer),
        reason: err.code,
      },
      'request',
    );
  };
}
