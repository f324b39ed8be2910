import { z } from 'zod';
import { configSchema } from './schema.js';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  format?: string;
  /** A record's values (`upstreams.<name>`). */
  additionalProperties?: JsonSchema | boolean;
}

function typeOf(s: JsonSchema): string {
  if (s.format === 'duration') return 'duration';
  if (s.format === 'size') return 'size';
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'integer' && s.minimum !== undefined && s.maximum !== undefined)
    return `integer ${s.minimum}–${s.maximum}`;
  if (Array.isArray(s.type)) return s.type.join(' \\| ');
  return s.type ?? 'any';
}

function defaultOf(s: JsonSchema, required: boolean): string {
  if (s.default === undefined) return required ? '**required**' : '—';
  if (
    typeof s.default === 'object' &&
    s.default !== null &&
    Object.keys(s.default).length === 0 &&
    !Array.isArray(s.default)
  ) {
    return '—';
  }
  return `\`${JSON.stringify(s.default)}\``;
}

/**
 * The README's config reference, rendered from the one schema declaration so the two
 * cannot drift (a test compares them).
 */
export function renderConfigReference(): string {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const rows: string[] = ['| Key | Type | Default | Meaning |', '| --- | --- | --- | --- |'];
  const walk = (schema: JsonSchema, prefix: string) => {
    for (const [key, child] of Object.entries(schema.properties ?? {})) {
      const path = `${prefix}${key}`;
      const required = schema.required?.includes(key) ?? false;
      const values = typeof child.additionalProperties === 'object' ? child.additionalProperties : undefined;
      const objectLike = child.properties ?? child.items?.properties ?? values?.properties;
      rows.push(
        `| \`${path}\` | ${objectLike ? (child.type === 'array' ? 'list' : 'section') : typeOf(child)} | ${defaultOf(child, required)} | ${child.description ?? ''} |`,
      );
      if (child.properties) walk(child, `${path}.`);
      else if (values?.properties) walk(values, `${path}.<name>.`);
      else if (child.items?.properties) walk(child.items, `${path}[].`);
    }
  };
  walk(root, '');
  return rows.join('\n');
}
