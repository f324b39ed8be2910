/*
 * Redis work per request, from `INFO all` snapshots around a measurement:
 *   scripts    EVAL/EVALSHA/FCALL calls (INFO commandstats): one command from the client each
 *   commands   every call in INFO commandstats but the bench's own INFO, including the
 *              commands a script runs inside Redis (they are counted there too)
 *   processed  INFO stats total_commands_processed (likewise includes commands run by scripts)
 *   reads      INFO stats total_reads_processed: socket reads by Redis. ioredis
 *              auto-pipelining sends the commands queued in one tick together, which Redis
 *              reads in one go, so reads are the closest figure to network round trips.
 * A snapshot costs itself a command and a read or two: `calibrate` measures that once and
 * `perRequest` takes it off.
 */
import { commandCalls, type RunningRedis } from '../test/helpers/redis.js';

export interface RedisCounters {
  scripts: number;
  commands: number;
  processed: number;
  reads: number;
}

type Info = Pick<RunningRedis, 'command'>;

const SCRIPT_COMMANDS = ['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'];

export async function redisCounters(redis: Info): Promise<RedisCounters> {
  const info = await redis.command('INFO', 'all');
  const stat = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return {
    scripts: commandCalls(info, SCRIPT_COMMANDS),
    commands: commandCalls(info) - commandCalls(info, ['info']),
    processed: stat('total_commands_processed'),
    reads: stat('total_reads_processed'),
  };
}

const FIGURES = ['scripts', 'commands', 'processed', 'reads'] as const;
const minus = (a: RedisCounters, b: RedisCounters) =>
  Object.fromEntries(FIGURES.map((k) => [k, a[k] - b[k]])) as unknown as RedisCounters;

/** What one snapshot adds to the counters (two snapshots back to back, nothing else running). */
export async function calibrate(redis: Info): Promise<RedisCounters> {
  const first = await redisCounters(redis);
  return minus(await redisCounters(redis), first);
}

export interface RedisPerRequest {
  scriptsPerReq: number;
  commandsPerReq: number;
  processedPerReq: number;
  readsPerReq: number;
}

export function perRequest(
  before: RedisCounters,
  after: RedisCounters,
  requests: number,
  overhead: RedisCounters,
): RedisPerRequest {
  const delta = minus(minus(after, before), overhead);
  const per = (n: number) => (requests > 0 ? Math.max(0, n) / requests : 0);
  return {
    scriptsPerReq: per(delta.scripts),
    commandsPerReq: per(delta.commands),
    processedPerReq: per(delta.processed),
    readsPerReq: per(delta.reads),
  };
}
