import { createHash } from 'node:crypto';
import type { Config } from './schema.js';

/** JSON with every object's keys sorted, so equal configs give equal text whatever the key order. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key]);
  return out;
}

/**
 * Identifies a validated config (after `${VAR}` expansion and defaults): the sha256 of its
 * canonical JSON, in hex. Reformatting or reordering the file does not change it; changing a
 * value, or an environment variable the file uses, does.
 */
export function configHash(config: Config): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(config)))
    .digest('hex');
}
