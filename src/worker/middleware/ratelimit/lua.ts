import type { Redis } from 'ioredis';

/*
 * The Redis side of gcra.ts, as one atomic script: read TAT, decide, write TAT with a PX
 * expiry equal to the time until the bucket is full again (an expired key *is* a full
 * bucket, so idle keys vanish without any sweeper). Time is Redis's own clock (TIME), so
 * workers and instances with skewed clocks still share one timeline. A refused request
 * writes nothing. TAT is written with %.0f so large integers never turn into 1.7e+15.
 */
export const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nxt = tat + interval
if nxt - now > burst * interval then
  return {0, tat - now}
end
local ttl = math.ceil((nxt - now) / 1000)
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', ttl)
return {1, nxt - now}
`;

/** The command `defineCommand` adds; the reply is `[allowed 0|1, fullInUs]`. */
export interface TakeCommand {
  porticoTake(key: string, intervalUs: number, burst: number): Promise<[number, number]>;
}

/** Registers the script once per client; ioredis then sends EVALSHA and falls back to EVAL. */
export function defineTakeCommand(client: Redis): Redis & TakeCommand {
  client.defineCommand('porticoTake', { numberOfKeys: 1, lua: TAKE_SCRIPT });
  return client as Redis & TakeCommand;
}
