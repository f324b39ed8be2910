import { startMockService } from './mock-services.js';

/*
 * One mock upstream as its own process, for the docker-compose stack:
 *   SERVICE=users PORT=9002 HOST=0.0.0.0 node dist/examples/mock-service.js
 */
const name = process.env.SERVICE ?? 'users';
const server = await startMockService(
  name,
  Number(process.env.PORT ?? 9002),
  process.env.HOST ?? '127.0.0.1',
);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
