/*
 * IPC between workers and the primary's embedded rate-limit store (used when no Redis is
 * configured). Takes are batched per event-loop turn: one message carries every take a
 * worker queued in that turn, one reply answers them all. Checked where they arrive.
 */

/** `[request id, bucket key, interval µs, burst]` */
export type TakeTuple = [number, string, number, number];
/** `[request id, allowed 1|0, full in µs]` */
export type ResultTuple = [number, number, number];

/**
 * Quota and ban counters (issue 16), in the same batches: `[request id, op, key, value, ttl s]`
 * with op 0 = add `value` (create expiring in ttl), 1 = get, 2 = set to `value`.
 */
export type CountTuple = [number, 0 | 1 | 2, string, number, number];
/** `[request id, count, ms until it expires]`; a missing counter is `[id, 0, 0]`. */
export type CountResultTuple = [number, number, number];

export type TakeBatch = { type: 'portico:ratelimit:take'; takes: TakeTuple[]; counts?: CountTuple[] };
export type ResultBatch = {
  type: 'portico:ratelimit:result';
  results: ResultTuple[];
  counts?: CountResultTuple[];
};

export function isTakeBatch(message: unknown): message is TakeBatch {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'portico:ratelimit:take' &&
    Array.isArray((message as { takes?: unknown }).takes)
  );
}

export function isResultBatch(message: unknown): message is ResultBatch {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'portico:ratelimit:result' &&
    Array.isArray((message as { results?: unknown }).results)
  );
}

/** One take tuple, element by element (the batch check only looked at the envelope). */
export function isTakeTuple(take: unknown): take is TakeTuple {
  return (
    Array.isArray(take) &&
    take.length === 4 &&
    typeof take[0] === 'number' &&
    typeof take[1] === 'string' &&
    Number.isSafeInteger(take[2]) &&
    (take[2] as number) > 0 &&
    Number.isSafeInteger(take[3]) &&
    (take[3] as number) > 0
  );
}

/** One count tuple, element by element. */
export function isCountTuple(count: unknown): count is CountTuple {
  return (
    Array.isArray(count) &&
    count.length === 5 &&
    typeof count[0] === 'number' &&
    (count[1] === 0 || count[1] === 1 || count[1] === 2) &&
    typeof count[2] === 'string' &&
    Number.isSafeInteger(count[3]) &&
    Number.isSafeInteger(count[4]) &&
    (count[4] as number) > 0
  );
}
