import type { Config } from './schema.js';

/** Deprecated key → the key that replaced it; both under the same value type. */
const ALIASES = [
  { alias: 'port', key: 'port', type: 'number' },
  { alias: 'host', key: 'host', type: 'string' },
] as const;

type Fields = Record<string, unknown>;
const isFields = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * `metrics.prometheus.port`/`host` named the metrics-only listener before `admin:` existed.
 * Applied to the raw document before validation, so `admin.*` keeps its one default in the
 * schema: an alias fills the `admin` key only where the file does not set it (the new key
 * wins). A value of the wrong type is left for the schema to report at the alias's own key.
 */
export function applyDeprecatedAliases(raw: unknown): unknown {
  if (!isFields(raw) || !isFields(raw.metrics) || !isFields(raw.metrics.prometheus)) return raw;
  if (raw.admin !== undefined && !isFields(raw.admin)) return raw;
  const prometheus = raw.metrics.prometheus;
  const admin: Fields = { ...raw.admin };
  for (const { alias, key, type } of ALIASES) {
    if (typeof prometheus[alias] === type && admin[key] === undefined) admin[key] = prometheus[alias];
  }
  return { ...raw, admin };
}

/** One warning per deprecated key the config uses, for the start-up log. */
export function deprecatedKeyWarnings(config: Config): { key: string; replacement: string; msg: string }[] {
  const prometheus = config.metrics?.prometheus;
  if (!prometheus) return [];
  const out: { key: string; replacement: string; msg: string }[] = [];
  for (const { alias, key } of ALIASES) {
    const value = prometheus[alias];
    if (value === undefined) continue;
    const replacement = `admin.${key}`;
    out.push({
      key: `metrics.prometheus.${alias}`,
      replacement,
      msg:
        value === config.admin[key]
          ? `metrics.prometheus.${alias} is deprecated; use ${replacement}`
          : `metrics.prometheus.${alias} is deprecated and ignored: ${replacement} is set`,
    });
  }
  return out;
}
