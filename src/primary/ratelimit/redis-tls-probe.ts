import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { ConfigError } from '../../shared/config/errors.js';
import type { Plan, RedisConnectionPlan, RedisNodePlan } from '../../shared/plan/types.js';
import { encodeCommand, readReplies, type RespReply } from './resp.js';

/** How long one probe may take; an unreachable Redis is the runtime's business, not the start's. */
const PROBE_TIMEOUT_MS = 2_000;

type TlsFiles = NonNullable<RedisConnectionPlan['tls']>;

/**
 * One TLS handshake with the configured Redis (the first node that answers) before the plan
 * is used: a certificate that does not verify against `redis.tls.ca` (or the system CAs)
 * will never verify, and reconnecting forever would only hide it. So it fails the start (or
 * the reload) with one line. A Redis that is down or slow passes: `on_store_error` covers
 * that at run time, and shared limiting starts when it answers.
 *
 * With Sentinel or Cluster the workers do not stay on the configured addresses: they go to
 * the master the sentinels name, and to the masters the cluster announces. So the node that
 * answered is asked for those (over the verified socket) and each gets a handshake too: a
 * certificate without the announced address among its names fails here, not in every worker.
 */
export async function probeRedisTls(plan: Plan): Promise<void> {
  const store = plan.limiter?.store;
  const tls = store?.kind === 'redis' ? store.redis.tls : undefined;
  if (store?.kind !== 'redis' || tls === undefined) return;
  const { redis } = store;
  const nodes: RedisNodePlan[] = redis.mode === 'standalone' ? [nodeOfUrl(redis.url)] : redis.nodes;
  const at =
    redis.mode === 'standalone'
      ? 'redis.url'
      : redis.mode === 'sentinel'
        ? 'redis.sentinel.nodes'
        : 'redis.cluster.nodes';
  for (const node of nodes) {
    const { outcome, reply } = await handshake(node, tls, questionFor(redis));
    if (outcome === 'unreachable') continue;
    if (outcome !== 'ok') throw failure(at, `at ${address(node)}`, outcome, tls);
    const named = reply === undefined ? [] : namedNodes(redis, reply, node);
    const outcomes = await Promise.all(named.map((n) => handshake(n, tls)));
    outcomes.forEach(({ outcome: theirs }, i) => {
      if (theirs === 'ok' || theirs === 'unreachable') return;
      const which =
        redis.mode === 'sentinel'
          ? `at ${address(named[i] as RedisNodePlan)}, the master the sentinel at ${address(node)} names,`
          : `at ${address(named[i] as RedisNodePlan)}, a master the cluster announces,`;
      throw failure(at, which, theirs, tls);
    });
    return;
  }
}

function failure(at: string, where: string, outcome: string, tls: TlsFiles): ConfigError {
  const ca = tls.ca === undefined ? "the system's CAs" : 'redis.tls.ca';
  const hint = outcome.includes('ERR_TLS_CERT_ALTNAME_INVALID')
    ? 'its certificate must name the address it is reached at'
    : `is ${ca} the CA that signed its certificate, and does the port serve TLS?`;
  return new ConfigError([`${at}: TLS to Redis ${where} failed: ${outcome} (${hint})`]);
}

const address = (node: RedisNodePlan) =>
  node.host.includes(':') ? `[${node.host}]:${node.port}` : `${node.host}:${node.port}`;

/** What to ask the first node that answers: where the workers will go next (none for a URL). */
function questionFor(redis: RedisConnectionPlan): string[][] | undefined {
  switch (redis.mode) {
    case 'standalone':
      return undefined;
    case 'sentinel':
      return [
        ...(redis.sentinelPassword === undefined ? [] : [['AUTH', redis.sentinelPassword]]),
        ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', redis.sentinelName],
      ];
    case 'cluster':
      return [
        ...(redis.password === undefined
          ? []
          : [
              redis.username === undefined
                ? ['AUTH', redis.password]
                : ['AUTH', redis.username, redis.password],
            ]),
        ['CLUSTER', 'NODES'],
      ];
  }
}

/**
 * The nodes named in `reply` other than `asked`: the sentinel's master, or the cluster's live
 * masters (the nodes serving slots now) at the address they announce. A node announced by
 * hostname is left out: which of its names the client uses is the cluster's setting, not
 * something to guess here. An error or an odd reply names nothing (the workers will say).
 */
function namedNodes(redis: RedisConnectionPlan, reply: RespReply, asked: RedisNodePlan): RedisNodePlan[] {
  const named: RedisNodePlan[] = [];
  if (redis.mode === 'sentinel' && Array.isArray(reply)) {
    const [host, port] = reply;
    if (typeof host === 'string' && typeof port === 'string') named.push({ host, port: Number(port) });
  } else if (redis.mode === 'cluster' && typeof reply === 'string') {
    for (const line of reply.split('\n')) {
      const [, endpoint, flags] = line.trim().split(' ');
      if (endpoint === undefined || flags === undefined) continue;
      if (!flags.split(',').includes('master') || /fail|noaddr|handshake/.test(flags)) continue;
      const [hostPort, hostname] = endpoint.split('@')[0]?.split(',') ?? [];
      const colon = hostPort?.lastIndexOf(':') ?? -1;
      if (hostPort === undefined || colon <= 0 || (hostname !== undefined && hostname !== '')) continue;
      named.push({ host: hostPort.slice(0, colon), port: Number(hostPort.slice(colon + 1)) });
    }
  }
  return named.filter(
    (n) => Number.isInteger(n.port) && n.port > 0 && !(n.host === asked.host && n.port === asked.port),
  );
}

function nodeOfUrl(url: string): RedisNodePlan {
  const parsed = new URL(url);
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  return { host: host === '' ? '127.0.0.1' : host, port: parsed.port === '' ? 6379 : Number(parsed.port) };
}

/**
 * `outcome`: 'ok', 'unreachable', or why the handshake failed. With `commands`, they are sent
 * once the certificate verified, and `reply` is the last one's answer (when it came in time).
 */
function handshake(
  node: RedisNodePlan,
  tls: TlsFiles,
  commands?: string[][],
): Promise<{ outcome: string; reply?: RespReply }> {
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
    let verified = false;
    const done = (outcome: string, reply?: RespReply) => {
      socket.destroy();
      resolve(reply === undefined ? { outcome } : { outcome, reply });
    };
    // No answer in time: a stalled Redis, or a plain-text port waiting for a command. Neither
    // is certain to stay so; the workers' connection says which, in words (redis-health.ts).
    // Once verified, a question left unanswered only means nothing more to check.
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(verified ? 'ok' : 'unreachable'));
    socket.once('secureConnect', () => {
      verified = true;
      if (commands === undefined) return done('ok');
      let data = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const { replies } = readReplies(data);
        if (replies.length >= commands.length) done('ok', replies[commands.length - 1]);
      });
      socket.write(commands.map(encodeCommand).join(''));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (verified) return done('ok');
      const code = err.code ?? '';
      if (/^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT)$/.test(code))
        done('unreachable');
      else done(`${err.message}${code !== '' && !err.message.includes(code) ? ` (${code})` : ''}`);
    });
  });
}
