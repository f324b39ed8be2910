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

/** A duration field in whole seconds (`1m` → 60), at least 1s and at most `max`, with a default. */
export const secondsDuration = (fallback: string, max: string) =>
  durationText().default(fallback).transform(wholeSeconds(max));

function wholeSeconds(max: string) {
  const parse = toMs(max);
  return (text: string, ctx: z.core.$RefinementCtx<string>) => {
    const ms = parse(text, ctx);
    if (typeof ms !== 'number') return z.NEVER;
    if (ms % 1000 !== 0) {
      ctx.addIssue({ code: 'custom', message: `must be whole seconds, got "${text}"` });
      return z.NEVER;
    }
    return ms / 1000;
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

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** A size in bytes: a number, or text such as `64KiB`, `1MB`, `2 MiB`; parsed to bytes. */
export const byteSize = (fallback: number | string, max: number) =>
  z
    .union([z.number(), z.string()], {
      error: (issue) => `expected a size such as 64KiB or 1MB, got ${describeInput(issue.input)}`,
    })
    .default(fallback)
    .meta({ format: 'size' })
    .transform((value, ctx) => {
      const m = typeof value === 'number' ? null : /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$/i.exec(value);
      const bytes =
        typeof value === 'number'
          ? value
          : m === null
            ? NaN
            : Number(m[1]) * (BYTE_UNITS[(m[2] ?? '').toLowerCase()] as number);
      if (!Number.isInteger(bytes) || bytes < 0 || bytes > max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a whole number of bytes 0–${max} (e.g. 64KiB, 1MB), got ${describeInput(value)}`,
        });
        return z.NEVER;
      }
      return bytes;
    });
