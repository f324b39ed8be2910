/*
 * `npm run bench` (first cut of issue 6's suite): Portico side by side with the upstream
 * itself and with a minimal Node proxy, interleaved over rounds, reported as ratios.
 *
 *   direct        the upstream itself (a separate process, like every target)
 *   node-raw      ~20 lines of http.request + pipe with a keep-alive agent, 1 process
 *   portico-bare  a route with no middleware, 1 worker
 *   portico-full  [tracing, auth, ratelimit, logging, metrics], HS256 token, Redis store,
 *                 spans exported to a local OTLP receiver, 1 worker
 *
 * Fixed flags: 50 connections, pipelining 1, 1 s warm-up, 5 s measured (`--duration`),
 * 2 rounds (`--rounds`); `--smoke` runs each target once for 1 s to prove the harness works.
 * Not yet here (see issue 6): nginx, fast-gateway, cluster-default runs, fixed-rate p99,
 * RESULTS.md and the chart.
 */
import { SignJWT } from 'jose';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js';
import { startRedis } from '../test/helpers/redis.js';
import { arg, BODY, interleave, median, startGateway, startScript, stopGateways } from './harness.js';
import { freePort } from '../test/helpers/net.js';

const SMOKE = process.argv.includes('--smoke');
const DURATION = SMOKE ? 1 : arg('duration', 5);
const ROUNDS = SMOKE ? 1 : arg('rounds', 2);
const CONNECTIONS = 50;

const upstreamPort = await freePort();
const upstream = await startScript(
  `import { createServer } from 'node:http';
   const body = ${JSON.stringify(BODY)};
   createServer((req, res) => {
     res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
     res.end(body);
   }).listen(${upstreamPort}, '127.0.0.1', () => console.log('ready'));`,
  {},
);
const target = `http://127.0.0.1:${upstreamPort}`;
const rawPort = await freePort();
const nodeRaw = await startScript(
  `import http from 'node:http';
   const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
   http.createServer((req, res) => {
     const up = http.request({ host: '127.0.0.1', port: ${upstreamPort}, path: req.url, method: req.method, headers: req.headers, agent }, (r) => {
       res.writeHead(r.statusCode, r.headers);
       r.pipe(res);
     });
     up.on('error', () => { res.writeHead(502); res.end(); });
     req.pipe(up);
   }).listen(${rawPort}, '127.0.0.1', () => console.log('ready'));`,
  {},
);

const redis = await startRedis();
process.on('exit', () => redis.kill('SIGKILL'));
const otlp = await startOtlpReceiver();
const secret = 'bench-secret-bench-secret-bench-secret-0123';
const token = await new SignJWT({ sub: 'bench-user' })
  .setProtectedHeader({ alg: 'HS256' })
  .setExpirationTime('1h')
  .sign(new TextEncoder().encode(secret));

const bare = await startGateway({ routes: [{ path: '/bench', target }] }, 1);
const full = await startGateway(
  {
    routes: [{ path: '/bench', target, middleware: ['tracing', 'auth', 'ratelimit', 'logging', 'metrics'] }],
    auth: { secret },
    rate_limit: { requests_per_second: 1e6, burst: 1e6 },
    redis: { url: redis.url },
    metrics: { prometheus: { port: await freePort() } },
    otel: { endpoint: otlp.endpoint },
  },
  1,
);

const targets = {
  direct: { url: `${target}/bench`, pid: upstream.pid as number, headers: {} },
  'node-raw': { url: `http://127.0.0.1:${rawPort}/bench`, pid: nodeRaw.pid as number, headers: {} },
  'portico-bare': { url: bare.url, pid: bare.proc.pid as number, headers: {} },
  'portico-full': {
    url: full.url,
    pid: full.proc.pid as number,
    headers: { authorization: `Bearer ${token}` },
  },
};
type Name = keyof typeof targets;
const names = Object.keys(targets) as Name[];
const runs = await interleave(targets, {
  rounds: ROUNDS,
  connections: CONNECTIONS,
  duration: DURATION,
  warmUp: !SMOKE,
});

const rps = (n: Name) => median(runs[n].map((r) => r.rps));
const cpu = (n: Name) => median(runs[n].map((r) => r.cpuUsPerReq));
console.log(
  `\nportico bench${SMOKE ? ' (smoke)' : ''}: ${CONNECTIONS} connections, ${DURATION} s x ${ROUNDS} rounds, node ${process.version}\n`,
);
console.log('| target | req/s | x node-raw | CPU µs/req | p99 ms | non-2xx | errors |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const name of names) {
  const r = runs[name];
  console.log(
    `| ${name} | ${rps(name).toFixed(0)} | ${(rps(name) / rps('node-raw')).toFixed(2)} | ${cpu(name).toFixed(0)} | ${median(r.map((x) => x.p99))} | ${r.reduce((s, x) => s + x.non2xx, 0)} | ${r.reduce((s, x) => s + x.errors, 0)} |`,
  );
}
console.log(
  `\nportico-full / portico-bare throughput: ${(rps('portico-full') / rps('portico-bare')).toFixed(2)}`,
);
const failed = names.filter((n) => runs[n].some((r) => r.non2xx > 0 || r.total === 0));
if (failed.length > 0) {
  console.error(`targets with non-2xx answers or no requests: ${failed.join(', ')}`);
  process.exitCode = 1;
}

await stopGateways([bare, full, { proc: upstream }, { proc: nodeRaw }]);
await otlp.close();
await redis.stop();
