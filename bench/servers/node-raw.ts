/*
 * `node-raw`: the least a Node reverse proxy can do, one process: http.request + pipe with a
 * keep-alive agent, headers passed as they are. The floor Portico is measured against.
 * Env: UPSTREAM_PORT. Prints `ready <port>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const upstreamPort = Number(process.env.UPSTREAM_PORT);
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });

const server = http.createServer((req, res) => {
  const upstream = http.request(
    { host: '127.0.0.1', port: upstreamPort, path: req.url, method: req.method, headers: req.headers, agent },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
});
server.listen(0, '127.0.0.1', () => console.log(`ready ${(server.address() as AddressInfo).port}`));
// Go with the bench (its IPC channel closes when it exits, however it exits).
process.on('disconnect', () => process.exit(0));
