import { createServer, type Server } from 'node:http';

/** Tiny JSON services standing in for real upstreams in the example. */
export function startMockService(name: string, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    const body = JSON.stringify({
      service: name,
      method: req.method,
      path: req.url,
      request_id: req.headers['x-request-id'],
      forwarded_for: req.headers['x-forwarded-for'],
      user: req.headers['x-user-id'],
      traceparent: req.headers.traceparent,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
