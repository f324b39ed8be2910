/*
 * A user's own entry file: register middleware, then start. Run it with
 *   node dist/examples/custom-middleware.js --config examples/custom-middleware.yaml
 * Every worker runs this file too, so every worker has the registered middleware.
 */
import { contextOf, createGateway, type Middleware } from 'portico';

/** Tags the upstream request with the route's `:id` parameter. */
const userIdHeader: Middleware = (next) =>
  function userIdHeader(req, res) {
    const { params } = contextOf(req);
    if (params.id !== undefined) req.headers['x-user-id'] = params.id;
    return next(req, res);
  };

/** Answers robots itself; the upstream never sees them. */
const noRobots: Middleware = (next) =>
  function noRobots(req, res) {
    if (/bot/i.test(req.headers['user-agent'] ?? '')) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'robots are not welcome' }));
      return;
    }
    return next(req, res);
  };

const configIndex = process.argv.indexOf('--config');
const configFile = configIndex > 0 ? (process.argv[configIndex + 1] as string) : './config.yaml';

await createGateway(configFile)
  .register('user-id-header', userIdHeader)
  .register('no-robots', noRobots)
  .start();
