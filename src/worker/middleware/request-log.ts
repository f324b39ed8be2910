import type { Logger } from 'pino';
import { pino } from 'pino';

/** A JSON string that needs no escaping: printable ASCII without `"` and `\`. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** `value` as a JSON string literal. */
export const jsonString = (value: string): string =>
  PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);

/** pino's `isoTime` field, formatted once per millisecond rather than once per line. */
let isoMs = -1;
let isoField = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoField;
}

interface Writable {
  write(chunk: string): unknown;
}

/**
 * The request lines of one event-loop turn, written to the logger's destination as one chunk
 * when the turn ends. pino's asynchronous destination (sonic-boom) measures the byte length of
 * the whole pending buffer on every write, so many small writes in a turn cost more than the
 * lines themselves; one joined write per turn does not.
 */
class TurnBatch {
  #lines: string[] = [];
  #scheduled = false;
  readonly #flush = () => this.flush();

  constructor(private readonly stream: Writable) {}

  push(line: string): void {
    this.#lines.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  flush(): void {
    this.#scheduled = false;
    const lines = this.#lines;
    if (lines.length === 0) return;
    this.#lines = [];
    this.stream.write(lines.length === 1 ? (lines[0] as string) : lines.join(''));
  }
}

/** One per logger destination; a reload that changes `logging:` makes a new one. */
const batches = new Map<Writable, TurnBatch>();
const MAX_DESTINATIONS = 4;

/** Writes what is still waiting for the end of the turn (the worker is about to exit). */
export function flushRequestLines(): void {
  for (const batch of batches.values()) batch.flush();
}

/**
 * Writes request records for `log` (a pino logger) exactly as `log.info(fields, 'request')`
 * would — same level, time, bindings and key order, `msg` last — from the caller's fields
 * already serialised (`,"key":value…`), without building an object for pino to walk.
 * Falls back to pino itself when the logger is configured in a way this does not reproduce.
 */
export function requestLineWriter(log: Logger): (warn: boolean, fields: string) => void {
  const stream = (log as unknown as Record<symbol, Writable>)[pino.symbols.streamSym];
  const chindings = (log as unknown as Record<symbol, string>)[pino.symbols.chindingsSym];
  const time = (log as unknown as Record<symbol, unknown>)[pino.symbols.timeSym];
  if (stream === undefined || typeof chindings !== 'string' || time !== pino.stdTimeFunctions.isoTime) {
    return (warn, fields) => {
      const record = JSON.parse(`{${fields.slice(1)}}`) as object;
      if (warn) log.warn(record, 'request');
      else log.info(record, 'request');
    };
  }
  let batch = batches.get(stream);
  if (batch === undefined) {
    for (const [old, oldest] of batches) {
      if (batches.size < MAX_DESTINATIONS) break;
      oldest.flush();
      batches.delete(old);
    }
    batch = new TurnBatch(stream);
    batches.set(stream, batch);
  }
  const target = batch;
  const info = `{"level":${log.levels.values.info}`;
  const warning = `{"level":${log.levels.values.warn}`;
  const tail = ',"msg":"request"}\n';
  return (warn, fields) => {
    if (!log.isLevelEnabled(warn ? 'warn' : 'info')) return;
    target.push((warn ? warning : info) + isoTime() + chindings + fields + tail);
  };
}
