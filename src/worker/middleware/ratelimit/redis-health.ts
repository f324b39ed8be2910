import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisConnectionPlan } from '../../../shared/plan/types.js';
import type { RedisConnection } from './redis-connection.js';

/**
 * Errors that reconnecting cannot cure: the URL (password, database, TLS) is wrong for this
 * server. ioredis treats them like a dropped connection and retries in silence (a bad
 * database index is worse: it stays connected to database 0), so shared limiting would be
 * quietly off. Returns how to say it, or `undefined` for an ordinary connection error.
 */
export function misconfiguration(err: Error & { code?: unknown }, tls: boolean): string | undefined {
  const message = err.message;
  if (/^(NOAUTH|WRONGPASS)\b|^ERR (invalid password|AUTH\b)/.test(message)) return 'authentication failed';
  if (/DB index is out of range|invalid DB index/i.test(message)) return 'database selection failed';
  const code = typeof err.code === 'string' ? err.code : '';
  if (/^ERR_(SSL|TLS)_|CERT|SIGNATURE|^EPROTO$/.test(code) || /\b(TLS|SSL)\b/.test(message))
    return 'TLS connection failed';
  // ioredis destroys the socket before saying so, so whether TCP got through is lost; over
  // rediss:// the usual cause is a port that does not speak TLS (it waits for a command).
  if (tls && code === 'ETIMEDOUT') return 'TLS connection failed';
  return undefined;
}

/** The URL for a log line: credentials (user and password) become `***`, the rest stays. */
export function maskRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return parsed.toString();
    parsed.username = '***';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return 'redis://?';
  }
}

export interface RedisHealthTarget {
  /** The store must fail every take with `err` (a misconfigured connection). */
  refuse(err: Error): void;
  /** A connection came up clean: the store may answer again. */
  accept(): void;
}

/** What the watcher reports besides the store's health (worker metrics). */
export interface RedisObserver {
  /** `portico_redis_up{role}`: `sentinel` from the sentinels' answers (Sentinel only). */
  redisUp(role: 'master' | 'sentinel', up: boolean): void;
  /** `portico_redis_failovers_total`: another node took over as master. */
  redisFailover(): void;
}

/**
 * Wires the client's events to the store and the limiter: a misconfiguration is logged at
 * error level once per kind (until a clean connection), makes the store refuse and the
 * limiter go down at once (gauge 0, `on_store_error` applies); a clean `ready` undoes it.
 * Other errors are reconnect noise, left to the limiter's transition log. A failover (the
 * sentinels name another master; a Cluster's slot table shows a new master) is counted and
 * logged, and lets the limiter probe at once rather than at its next interval.
 */
export function watchRedisHealth(
  client: RedisConnection,
  plan: RedisConnectionPlan,
  describe: string,
  logger: Logger,
  target: RedisHealthTarget,
  observer: RedisObserver,
  onDown: (err: Error) => void,
  onReady: () => void,
): void {
  const tls = plan.tls !== undefined;
  const reported = new Set<string>();
  // Reset on each new connection: an error seen on this one vetoes its `ready`.
  let misconfigured = false;
  client.on('connect', () => {
    misconfigured = false;
  });
  const onError = (err: Error) => {
    if (plan.mode === 'sentinel' && /sentinels are unreachable/i.test(err.message))
      observer.redisUp('sentinel', false);
    const what = misconfiguration(err, tls);
    if (what === undefined) {
      logger.debug({ err: err.message }, 'redis client error');
      return;
    }
    misconfigured = true;
    target.refuse(err);
    if (!reported.has(what)) {
      reported.add(what);
      // A certificate that failed (wrong CA, a name it lacks) proves a session was made.
      const hint =
        tls && what.startsWith('TLS') && !/TLS|SSL|certificate/i.test(err.message)
          ? ' (no TLS session: does the port serve TLS?)'
          : '';
      logger.error(
        { store: 'redis', redis: describe },
        `redis ${what} for ${describe}: ${err.message}${hint}`,
      );
    }
    onDown(err);
  };
  client.on('error', onError);
  if (client instanceof Cluster) {
    client.on('node error', onError);
    watchClusterMasters(client, logger, observer, onReady);
  } else if (plan.mode === 'sentinel') {
    let master: string | undefined;
    client.on('ready', () => {
      observer.redisUp('sentinel', true);
      const stream = client.stream;
      const now = `${stream.remoteAddress ?? '?'}:${stream.remotePort ?? '?'}`;
      if (master !== undefined && master !== now) {
        observer.redisFailover();
        logger.info(
          { store: 'redis', redis: describe, master: now, was: master },
          'redis failover: new master',
        );
      }
      master = now;
    });
  }
  client.on('ready', () => {
    if (misconfigured) return;
    reported.clear();
    target.accept();
    onReady();
  });
}

/** A master absent from the previous slot table is a promoted replica (or a new shard). */
function watchClusterMasters(
  cluster: Cluster,
  logger: Logger,
  observer: RedisObserver,
  onChange: () => void,
): void {
  let masters: Set<string> | undefined;
  cluster.on('refresh', () => {
    const now = new Set(cluster.nodes('master').map((n) => `${n.options.host}:${n.options.port}`));
    if (masters !== undefined) {
      const promoted = [...now].filter((m) => !masters?.has(m));
      if (promoted.length > 0) {
        for (let i = 0; i < promoted.length; i++) observer.redisFailover();
        logger.info(
          { store: 'redis', masters: [...now] },
          `redis cluster failover: ${promoted.join(', ')} now master`,
        );
        onChange();
      }
    }
    masters = now;
  });
}
