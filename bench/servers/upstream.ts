/*
 * The upstream every target of `npm run bench` proxies to, as its own process (so its CPU is
 * neither the load generator's nor a gateway's). It listens on three ports, the endpoints of
 * `portico-pool`'s upstream (the others use the first): one process whatever the target, so
 * targets differ only in the gateway. Prints `ready <port> <port> <port>`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answer } from './body.js';

const listen = (server: Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
const ports = await Promise.all([0, 1, 2].map(() => listen(createServer(answer))));
console.log(`ready ${ports.join(' ')}`);
// Go with the bench (its IPC channel closes when it exits, however it exits).
process.on('disconnect', () => process.exit(0));
