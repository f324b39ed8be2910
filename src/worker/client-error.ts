import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { GatewayError, rawErrorResponse } from '../shared/errors.js';

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
 * The server's `clientError` listener: answers from the error table, on the raw socket since
 * there is no `ServerResponse`, unless a response is already under way on the connection
 * (writing then would corrupt it, so it is cut instead, as Node itself does).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  socket.end(rawErrorResponse(errorFor(err.code), randomUUID()));
}
