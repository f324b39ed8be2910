import type { QuotaPlan } from '../../../shared/plan/types.js';

/** One calendar window of a quota: `[startMs, endMs)` in Unix milliseconds, UTC. */
export interface QuotaWindow {
  readonly startMs: number;
  readonly endMs: number;
  /** The window start as it appears in store keys, e.g. `2026-12-01` for a day. */
  readonly label: string;
}

// How much of the ISO timestamp names the window: `2026-12` for a month … `…T06:45:12` for a second.
const LABEL_LENGTH: Record<QuotaPlan['per'], number> = {
  month: 7,
  day: 10,
  hour: 13,
  minute: 16,
  second: 19,
};
const FIXED_MS: Record<Exclude<QuotaPlan['per'], 'month'>, number> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};

/**
 * The UTC calendar window of `per` holding `nowMs`. Seconds to days have fixed lengths
 * (UTC has no DST, and Unix time has no leap seconds), so they are plain divisions of
 * the Unix epoch; a month runs from the 1st 00:00 UTC to the next month's 1st, which
 * `Date.UTC` computes across year ends and leap Februaries.
 *
 * @example windowOf('day', Date.UTC(2026, 11, 1, 6, 45)) // { label: '2026-12-01', … }
 */
export function windowOf(per: QuotaPlan['per'], nowMs: number): QuotaWindow {
  let startMs: number;
  let endMs: number;
  if (per === 'month') {
    const now = new Date(nowMs);
    const year = now.getUTCFullYear();
    const month = now.getUTCMonth();
    startMs = Date.UTC(year, month, 1);
    endMs = Date.UTC(year, month + 1, 1);
  } else {
    const length = FIXED_MS[per];
    startMs = Math.floor(nowMs / length) * length;
    endMs = startMs + length;
  }
  return { startMs, endMs, label: new Date(startMs).toISOString().slice(0, LABEL_LENGTH[per]) };
}

/**
 * A quota's current window, recomputed only when the clock has left it: per request this
 * is one comparison, and the label string is made once per window.
 */
export class WindowClock {
  #window: QuotaWindow = { startMs: 0, endMs: 0, label: '' };
  constructor(readonly per: QuotaPlan['per']) {}

  at(nowMs: number): QuotaWindow {
    const window = this.#window;
    if (nowMs < window.endMs && nowMs >= window.startMs) return window;
    return (this.#window = windowOf(this.per, nowMs));
  }
}
