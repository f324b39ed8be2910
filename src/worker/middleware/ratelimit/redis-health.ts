import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

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

/**
 * Wires the client's events to the store and the limiter: a misconfiguration is logged at
 * error level once per kind (until a clean connection), makes the store refuse and the
 * limiter go down at once (gauge 0, `on_store_error` applies); a clean `ready` undoes it.
 * Other errors are reconnect noise, left to the limiter's transition log.
 */
export function watchRedisHealth(
  client: Redis,
  url: string,
  logger: Logger,
  target: RedisHealthTarget,
  onDown: (err: Error) => void,
  onReady: () => void,
): void {
  const masked = maskRedisUrl(url);
  const tls = url.startsWith('rediss:');
  const reported = new Set<string>();
  // Reset on each new connection: an error seen on this one vetoes its `ready`.
  let misconfigured = false;
  client.on('connect', () => {
    misconfigured = false;
  });
  client.on('error', (err: Error) => {
    const what = misconfiguration(err, tls);
    if (what === undefined) {
      logger.debug({ err: err.message }, 'redis client error');
      return;
    }
    misconfigured = true;
    target.refuse(err);
    if (!reported.has(what)) {
      reported.add(what);
      const hint =
        tls && what.startsWith('TLS') && !/TLS|SSL/.test(err.message)
          ? ' (no TLS session: does the port serve TLS?)'
          : '';
      logger.error({ store: 'redis', redis: masked }, `redis ${what} for ${masked}: ${err.message}${hint}`);
    }
    onDown(err);
  });
  client.on('ready', () => {
    if (misconfigured) return;
    reported.clear();
    target.accept();
    onReady();
  });
}
