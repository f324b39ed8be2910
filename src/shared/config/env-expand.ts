/** One problem found while expanding `${VAR}` references, with the key path of the value. */
export interface ExpandProblem {
  path: (string | number)[];
  message: string;
}

// ${NAME} or ${NAME:-default}; `$${` escapes a literal `${`.
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Returns a copy of `value` in which every string has its `${VAR}` and `${VAR:-default}`
 * references replaced from `env`. Secrets can then stay out of the config file.
 * An unset variable without a default is a problem reported with its key path.
 */
export function expandEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  problems: ExpandProblem[],
  path: (string | number)[] = [],
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    return value.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      const found = env[name as string];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push({ path, message: `environment variable ${name} is not set and has no default` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnv(item, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value))
      out[key] = expandEnv(item, env, problems, [...path, key]);
    return out;
  }
  return value;
}
