import type { RedisConnection } from './redis-connection.js';

/*
 * The Redis side of gcra.ts, as one atomic script over a batch of takes: for each key, read
 * TAT, decide, write TAT with a PX expiry equal to the time until the bucket is full again
 * (an expired key *is* a full bucket, so idle keys vanish without any sweeper). Time is
 * Redis's own clock (TIME, read once per batch), so workers and instances with skewed clocks
 * share one timeline. Takes of the same key in one batch are applied in order, exactly as if
 * they had arrived one by one, but the key is read once and written once (a hot key, such as
 * one client far over its budget, costs one GET and one SET per batch). A key whose takes
 * were all refused is not written. TAT is written with %.0f so large integers never turn
 * into 1.7e+15.
 *
 * KEYS: the bucket keys; ARGV: interval (µs) and burst of each take, in the same order.
 * One key with several takes (a Cluster batch, one slot) stands for all of them.
 * Reply: a flat list, allowed (0|1) and fullInUs of each take.
 */
export const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, order, out = {}, {}, {}
for i = 1, #ARGV / 2 do
  local key = KEYS[i] or KEYS[1]
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tats[key]
  if tat == nil then
    tat = tonumber(redis.call('GET', key))
    if tat == nil or tat < now then tat = now end
  end
  local nxt = tat + interval
  if nxt - now > burst * interval then
    out[2 * i - 1] = 0
    out[2 * i] = tat - now
  else
    if not order[key] then order[#order + 1] = key; order[key] = true end
    out[2 * i - 1] = 1
    out[2 * i] = nxt - now
    tat = nxt
  end
  tats[key] = tat
end
for j = 1, #order do
  local key = order[j]
  local ttl = math.ceil((tats[key] - now) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', key, string.format('%.0f', tats[key]), 'PX', ttl)
end
return out
`;

/** The commands `defineCommand` adds. */
export interface TakeCommand {
  /** `numkeys, ...keys, ...[interval, burst]`: one take per key. */
  porticoTake(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
  /**
   * `key, ...[interval, burst]`: every take on one key. Its own command because ioredis
   * Cluster routes (and auto-pipelines) a command by its first argument, which must be the key.
   */
  porticoTakeKey(key: string, ...args: number[]): Promise<number[]>;
}

/** Registers the script once per client; ioredis then sends EVALSHA and falls back to EVAL. */
export function defineTakeCommand<C extends RedisConnection>(client: C): C & TakeCommand {
  // No fixed numberOfKeys: each call passes its batch size first.
  client.defineCommand('porticoTake', { lua: TAKE_SCRIPT });
  client.defineCommand('porticoTakeKey', { lua: TAKE_SCRIPT, numberOfKeys: 1 });
  return client as C & TakeCommand;
}
