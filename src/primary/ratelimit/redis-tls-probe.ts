import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { ConfigError } from '../../shared/config/errors.js';
import type { Plan, RedisNodePlan } from '../../shared/plan/types.js';

/** How long one probe may take; an unreachable Redis is the runtime's business, not the start's. */
const PROBE_TIMEOUT_MS = 2_000;

/**
 * One TLS handshake with the configured Redis (the first node that answers) before the plan
 * is used: a certificate that does not verify against `redis.tls.ca` (or the system CAs)
 * will never verify, and reconnecting forever would only hide it. So it fails the start (or
 * the reload) with one line. A Redis that is down or slow passes: `on_store_error` covers
 * that at run time, and shared limiting starts when it answers.
 */
export async function probeRedisTls(plan: Plan): Promise<void> {
  const store = plan.limiter?.store;
  if (store?.kind !== 'redis' || store.redis.tls === undefined) return;
  const { redis } = store;
  const tls = store.redis.tls;
  const nodes: RedisNodePlan[] = redis.mode === 'standalone' ? [nodeOfUrl(redis.url)] : redis.nodes;
  const at =
    redis.mode === 'standalone'
      ? 'redis.url'
      : redis.mode === 'sentinel'
        ? 'redis.sentinel.nodes'
        : 'redis.cluster.nodes';
  for (const node of nodes) {
    const outcome = await handshake(node, tls);
    if (outcome === 'ok') return;
    if (outcome !== 'unreachable') {
      const ca = tls.ca === undefined ? "the system's CAs" : 'redis.tls.ca';
      throw new ConfigError([
        `${at}: TLS to Redis at ${node.host}:${node.port} failed: ${outcome} (is ${ca} the CA that signed its certificate, and does the port serve TLS?)`,
      ]);
    }
  }
}

function nodeOfUrl(url: string): RedisNodePlan {
  const parsed = new URL(url);
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  return { host: host === '' ? '127.0.0.1' : host, port: parsed.port === '' ? 6379 : Number(parsed.port) };
}

/** 'ok', 'unreachable', or why the handshake failed. */
function handshake(node: RedisNodePlan, tls: { ca?: string; cert?: string; key?: string }): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({
      host: node.host,
      port: node.port,
      ...(isIP(node.host) === 0 ? { servername: node.host } : {}),
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
      rejectUnauthorized: true,
    });
    const done = (outcome: string) => {
      socket.destroy();
      resolve(outcome);
    };
    // No answer in time: a stalled Redis, or a plain-text port waiting for a command. Neither
    // is certain to stay so; the workers' connection says which, in words (redis-health.ts).
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done('unreachable'));
    socket.once('secureConnect', () => done('ok'));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      if (/^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT)$/.test(code))
        done('unreachable');
      else done(`${err.message}${code !== '' && !err.message.includes(code) ? ` (${code})` : ''}`);
    });
  });
}
