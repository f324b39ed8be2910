/*
 * The upstream every target of `npm run bench` proxies to, as its own process (so its CPU is
 * neither the load generator's nor a gateway's). Prints `ready <port>`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answer } from './body.js';

const server = createServer(answer);
server.listen(0, '127.0.0.1', () => console.log(`ready ${(server.address() as AddressInfo).port}`));
// Go with the bench (its IPC channel closes when it exits, however it exits).
process.on('disconnect', () => process.exit(0));
