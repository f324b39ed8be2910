import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cannotListen } from '../src/shared/startup-error.js';
import { startMockService } from './mock-services.js';

/*
 * `npm start`: the mock upstream services plus the gateway (examples/config.yaml) in one
 * command. Ctrl-C (or SIGTERM) drains the gateway and stops everything; SIGHUP reloads the
 * gateway's config and stops nothing. A port that is taken (here or in the gateway) stops
 * everything with one line on stderr and exit code 1.
 */
const usersPort = Number(process.env.USERS_PORT ?? 9002);
const ordersPort = Number(process.env.ORDERS_PORT ?? 9003);
const mocks = [
  { name: 'users', port: usersPort, env: 'USERS_PORT' },
  { name: 'orders', port: ordersPort, env: 'ORDERS_PORT' },
];
const started = await Promise.allSettled(mocks.map(({ name, port }) => startMockService(name, port)));
const services = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
const failed = started.findIndex((result) => result.status === 'rejected');
if (failed !== -1) {
  const { port, env } = mocks[failed] as (typeof mocks)[number];
  const { code } = (started[failed] as PromiseRejectedResult).reason as NodeJS.ErrnoException;
  process.stderr.write(`portico: ${cannotListen('127.0.0.1', port, code, env)}\n`);
  for (const service of services) service.close();
  process.exit(1);
}

const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const config = fileURLToPath(new URL('../../examples/config.yaml', import.meta.url));
const gateway = spawn(process.execPath, [cli, '--config', config], {
  stdio: 'inherit',
  env: {
    ...process.env,
    USERS_URL: `http://127.0.0.1:${usersPort}`,
    ORDERS_URL: `http://127.0.0.1:${ordersPort}`,
  },
});

const stop = (signal: NodeJS.Signals) => gateway.kill(signal);
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
// A hang-up reaches the whole process group: the gateway reloads its config, and this
// wrapper and the mock services must outlive it (npm, which forwards only SIGINT and SIGTERM
// to its script, exits; everything it started goes on).
process.on('SIGHUP', () => {});
gateway.on('exit', (code) => {
  for (const service of services) service.close();
  process.exitCode = code ?? 1;
});
