/*
 * Redis work per request, from `INFO all` snapshots around a measurement:
 *   commands   calls in INFO commandstats (every command but the bench's own INFO, or
 *              only the listed ones)
 *   processed  INFO stats total_commands_processed (every command, INFO included)
 *   reads      INFO stats total_reads_processed: socket reads by Redis. ioredis
 *              auto-pipelining sends the commands queued in one tick together, which Redis
 *              reads in one go, so reads are the closest figure to network round trips.
 * A snapshot costs itself a command and a read or two: `calibrate` measures that once and
 * `perRequest` takes it off.
 */
import { commandCalls, type RunningRedis } from '../test/helpers/redis.js';

export interface RedisCounters {
  commands: number;
  processed: number;
  reads: number;
}

type Info = Pick<RunningRedis, 'command'>;

export async function redisCounters(redis: Info, only?: readonly string[]): Promise<RedisCounters> {
  const info = await redis.command('INFO', 'all');
  const stat = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return {
    commands: only ? commandCalls(info, only) : commandCalls(info) - commandCalls(info, ['info']),
    processed: stat('total_commands_processed'),
    reads: stat('total_reads_processed'),
  };
}

const minus = (a: RedisCounters, b: RedisCounters): RedisCounters => ({
  commands: a.commands - b.commands,
  processed: a.processed - b.processed,
  reads: a.reads - b.reads,
});

/** What one snapshot adds to the counters (two snapshots back to back, nothing else running). */
export async function calibrate(redis: Info, only?: readonly string[]): Promise<RedisCounters> {
  const first = await redisCounters(redis, only);
  return minus(await redisCounters(redis, only), first);
}

export interface RedisPerRequest {
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
    commandsPerReq: per(delta.commands),
    processedPerReq: per(delta.processed),
    readsPerReq: per(delta.reads),
  };
}
