import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GatewayError, writeError } from '../../shared/errors.js';
import type { Plan } from '../../shared/plan/types.js';
import { requestIdOf } from '../../shared/request-id.js';

/*
 * Issue 15: `server.http_redirect_port`. Every worker listens on it too (node:cluster shares
 * the port as it shares the main one), so it needs no process of its own and is replaced with
 * the workers when it changes. It answers everything with a 308 (method and body kept) to the
 * same host, path and query on `https://` and `server.port`; it proxies nothing.
 */

const BAD_HOST = new GatewayError('PORTICO_ERR_BAD_HOST');
// A host name, an IPv4 address or a bracketed IPv6 one, with an optional port: anything else
// would be written into a Location header.
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export function createRedirectServer(plan: Plan): Server | undefined {
  if (plan.server.http_redirect_port === 0 || plan.serverTls === null) return undefined;
  const port = plan.server.port;
  const suffix = port === 443 ? '' : `:${port}`;
  return createServer(
    { maxHeaderSize: plan.server.max_header_size, requireHostHeader: false },
    function redirectToHttps(req: IncomingMessage, res: ServerResponse) {
      const requestId = requestIdOf(req.headers);
      res.setHeader('x-request-id', requestId);
      const host = req.headers.host;
      if (host === undefined || !HOST.test(host)) {
        writeError(res, BAD_HOST);
        return;
      }
      const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
      const path = req.url?.startsWith('/') ? req.url : '/';
      res.writeHead(308, { location: `https://${hostname}${suffix}${path}`, 'content-length': 0 });
      res.end();
      // A body the client may still send is not wanted.
      req.resume();
    },
  );
}
