/*
 * The upstream every target of `npm run bench` proxies to, as its own process (so its CPU is
 * neither the load generator's nor a gateway's). It listens on three ports, the endpoints of
 * `portico-pool`'s upstream (the others use the first): one process whatever the target, so
 * targets differ only in the gateway. With WORKERS > 1 (the many-core layout gives the
 * upstream several cores) that many node:cluster workers share the three ports, so the
 * upstream does not cap an 8-worker gateway. Prints `ready <port> <port> <port>`.
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answer } from './body.js';

const workers = Number(process.env.WORKERS ?? 1);

// Workers' n-th listen(0) share one port (node:cluster hands the same handle to each).
const listen = (server: Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
const serve = () => Promise.all([0, 1, 2].map(() => listen(createServer(answer))));

// Go with the bench (its IPC channel closes when it exits, however it exits); cluster workers
// exit when their primary's channel closes.
if (cluster.isPrimary) process.on('disconnect', () => process.exit(0));

if (workers <= 1) {
  console.log(`ready ${(await serve()).join(' ')}`);
} else if (cluster.isPrimary) {
  let ready = 0;
  cluster.on('message', (_worker, message: { ports: number[] }) => {
    if (++ready === workers) console.log(`ready ${message.ports.join(' ')}`);
  });
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  process.send?.({ ports: await serve() });
}
