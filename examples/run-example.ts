import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMockService } from './mock-services.js';

/*
 * `npm start`: the mock upstream services plus the gateway (examples/config.yaml) in one
 * command. Ctrl-C (or SIGTERM) drains the gateway and stops everything.
 */
const usersPort = Number(process.env.USERS_PORT ?? 9002);
const ordersPort = Number(process.env.ORDERS_PORT ?? 9003);
const services = await Promise.all([
  startMockService('users', usersPort),
  startMockService('orders', ordersPort),
]);

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
gateway.on('exit', (code) => {
  for (const service of services) service.close();
  process.exitCode = code ?? 1;
});
