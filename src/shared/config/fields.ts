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

/** `timeout: 5` is the usual slip: say what a duration looks like, not "expected string". */
const durationText = () =>
  z
    .string({
      error: (issue) =>
        `expected a duration such as 5s (a number with a unit: ms, s, m or h), got ${describeInput(issue.input)}`,
    })
    .meta({ format: 'duration' });

/** A duration field (`500ms`, `5s`, `1m`, `2h`) with a default; parsed to milliseconds. */
export const duration = (fallback: string, max = '1h') =>
  durationText().default(fallback).transform(toMs(max));

/** A duration field without a default (for per-route overrides); parsed to milliseconds. */
export const optionalDuration = (max = '1h') => durationText().transform(toMs(max)).optional();

/** A config value as a problem line shows it: short, and typed (`5`, `true`, `a list`). */
export function describeInput(input: unknown): string {
  if (typeof input === 'string') return input.slice(0, 40);
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  if (Array.isArray(input)) return 'a list';
  if (input !== null && typeof input === 'object') return 'a mapping';
  return 'nothing';
}
