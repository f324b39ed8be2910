const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/**
 * Parses a human duration such as `500ms`, `5s`, `1.5m` or `2h` into milliseconds.
 * Returns `undefined` for anything else, so callers can report the key path.
 *
 * @example parseDuration('5s') // 5000
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const [, amount, unit] = match as unknown as [string, string, string];
  return Math.round(Number(amount) * (UNITS[unit] as number));
}
