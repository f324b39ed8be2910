/*
 * What the bench upstream answers: ~100 bytes of JSON, keep-alive. Shared by the upstream
 * process of `npm run bench` and the in-process upstream of bench:auth and bench:ratelimit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const BODY = JSON.stringify({
  id: 42,
  name: 'portico bench',
  items: [1, 2, 3],
  ok: true,
  pad: 'x'.repeat(30),
});

const LENGTH = String(Buffer.byteLength(BODY));

export function answer(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': LENGTH });
  res.end(BODY);
}
