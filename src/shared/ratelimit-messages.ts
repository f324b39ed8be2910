/*
 * IPC between workers and the primary's embedded rate-limit store (used when no Redis is
 * configured). Takes are batched per event-loop turn: one message carries every take a
 * worker queued in that turn, one reply answers them all. Checked where they arrive.
 */

/** `[request id, bucket key, interval µs, burst]` */
export type TakeTuple = [number, string, number, number];
/** `[request id, allowed 1|0, full in µs]` */
export type ResultTuple = [number, number, number];

export type TakeBatch = { type: 'portico:ratelimit:take'; takes: TakeTuple[] };
export type ResultBatch = { type: 'portico:ratelimit:result'; results: ResultTuple[] };

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
