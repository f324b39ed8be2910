import { z } from 'zod';
import { parseDuration } from './duration.js';

function toMs(max: string) {
  const maxMs = parseDuration(max) as number;
  return (text: string, ctx: z.core.$RefinementCtx<string>) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `invalid duration "${text}" (use e.g. 500ms, 5s, 1m)` });
      return z.NEVER;
    }
    if (ms <= 0 || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `duration must be > 0 and at most ${max}` });
      return z.NEVER;
    }
    return ms;
  };
}

/** A duration field (`500ms`, `5s`, `1m`, `2h`) with a default; parsed to milliseconds. */
export const duration = (fallback: string, max = '1h') =>
  z.string().meta({ format: 'duration' }).default(fallback).transform(toMs(max));

/** A duration field without a default (for per-route overrides); parsed to milliseconds. */
export const optionalDuration = (max = '1h') =>
  z.string().meta({ format: 'duration' }).transform(toMs(max)).optional();
