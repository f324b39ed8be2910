/*
 * `npm run bench:auth`: what the `auth` middleware costs, side by side in one run.
 *
 *   bare              a route with no middleware (the baseline)
 *   hs256             [auth], HS256 secret, one token reused (verified-token cache hits)
 *   hs256-no-cache    the same with auth.cache_size: 0 (a signature check per request)
 *   rs256             [auth], RS256 public key, one token reused (cache hits)
 *   rs256-no-cache    the same with auth.cache_size: 0
 *
 * Fixed flags: 1 worker (`--workers N`), 50 connections, pipelining 1, 1 s warm-up then 5 s
 * measured per target (`--duration S`), targets interleaved over 2 rounds (`--rounds R`);
 * medians reported. CPU µs/req (user+sys of the gateway's processes ÷ requests) is the
 * steadiest figure on a shared machine. Loopback only.
 */
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import {
  interleave,
  median,
  startGateway,
  startUpstream,
  sideBySideFlags,
  stopGateways,
  type Target,
} from './harness.js';

const FLAGS = sideBySideFlags();
const { workers: WORKERS, duration: DURATION, rounds: ROUNDS, connections: CONNECTIONS } = FLAGS;

const upstream = await startUpstream();
const secret = 'bench-secret-bench-secret-bench-secret-0123';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const claims = { sub: 'bench-user', scope: 'read' };
const hsToken = await new SignJWT(claims)
  .setProtectedHeader({ alg: 'HS256' })
  .setIssuer('bench')
  .setExpirationTime('1h')
  .sign(new TextEncoder().encode(secret));
const rsToken = await new SignJWT(claims)
  .setProtectedHeader({ alg: 'RS256' })
  .setIssuer('bench')
  .setExpirationTime('1h')
  .sign(privateKey);

const route = (auth: Record<string, unknown>) => ({
  routes: [
    { path: '/bench', target: upstream.url, middleware: ['auth'], auth: { issuer: 'bench', ...auth } },
  ],
});
const gateways = {
  bare: {
    ...(await startGateway({ routes: [{ path: '/bench', target: upstream.url }] }, WORKERS)),
    token: '',
  },
  hs256: { ...(await startGateway(route({ secret }), WORKERS)), token: hsToken },
  'hs256-no-cache': { ...(await startGateway(route({ secret, cache_size: 0 }), WORKERS)), token: hsToken },
  rs256: { ...(await startGateway(route({ public_key: publicPem }), WORKERS)), token: rsToken },
  'rs256-no-cache': {
    ...(await startGateway(route({ public_key: publicPem, cache_size: 0 }), WORKERS)),
    token: rsToken,
  },
};
type Name = keyof typeof gateways;
const names = Object.keys(gateways) as Name[];
const targets = Object.fromEntries(
  names.map((name) => {
    const { url, proc, token } = gateways[name];
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    return [name, { url, pid: proc.pid as number, headers }];
  }),
) as Record<Name, Target>;
const runs = await interleave(targets, {
  rounds: ROUNDS,
  connections: CONNECTIONS,
  duration: DURATION,
  warmUp: true,
});

const bareRps = median(runs.bare.map((r) => r.rps));
const bareCpu = median(runs.bare.map((r) => r.cpuUsPerReq));
console.log(FLAGS.headline('auth'));
console.log('| target | req/s (median) | x bare | gateway CPU µs/req | x bare | p99 ms | non-2xx | errors |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const name of names) {
  const r = runs[name];
  const rps = median(r.map((x) => x.rps));
  const cpu = median(r.map((x) => x.cpuUsPerReq));
  console.log(
    `| ${name} | ${rps.toFixed(0)} | ${(rps / bareRps).toFixed(2)} | ${cpu.toFixed(0)} | ${(cpu / bareCpu).toFixed(2)} | ${median(r.map((x) => x.latency.p99))} | ${r.reduce((s, x) => s + x.non2xx, 0)} | ${r.reduce((s, x) => s + x.errors, 0)} |`,
  );
}

await stopGateways(Object.values(gateways));
upstream.server.closeAllConnections();
upstream.server.close();
