import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { contextOf } from '../../context.js';
import { ipv6Network } from './ipv6-prefix.js';

/** Parsed `rate_limit.key`. */
export type KeySpec =
  { kind: 'ip' } | { kind: 'sub' } | { kind: 'route+ip' } | { kind: 'header'; name: string };

export function parseKeySpec(text: string): KeySpec {
  if (text === 'ip' || text === 'sub' || text === 'route+ip') return { kind: text };
  if (text.startsWith('header:')) return { kind: 'header', name: text.slice(7).toLowerCase() };
  throw new Error(`invalid rate_limit.key "${text}"`);
}

// Client-chosen values (tokens' sub, header values) are bounded before they become keys.
const MAX_VALUE_LENGTH = 128;
const bounded = (value: string): string =>
  value.length <= MAX_VALUE_LENGTH ? value : `#${createHash('sha256').update(value).digest('base64url')}`;

/**
 * Compiles the bucket key function of one route. `scope` already names whose budget this
 * is (`g` for the global block, `r:<route>` for a route's own block); the key kinds are
 * tagged (`ip:`, `sub:`, `h:`) so a subject that looks like an address cannot share an
 * address's bucket. A request without the subject or header falls back to its client IP:
 * anonymous callers are limited per address, never pooled into one shared bucket. IPv6
 * clients are keyed by their `/ipv6Bits` network (see ipv6-prefix.ts).
 */
export function compileKey(
  spec: KeySpec,
  scope: string,
  route: string,
  ipv6Bits: number,
): (req: IncomingMessage) => string {
  const ipPrefix = `${scope}|ip:`;
  const client = (req: IncomingMessage) => ipv6Network(contextOf(req).clientIp, ipv6Bits);
  switch (spec.kind) {
    case 'ip':
      return (req) => ipPrefix + client(req);
    case 'route+ip': {
      const prefix = `${scope}|route:${route}|ip:`;
      return (req) => prefix + client(req);
    }
    case 'sub': {
      const prefix = `${scope}|sub:`;
      return (req) => {
        const ctx = contextOf(req);
        const sub = ctx.claims?.sub;
        if (typeof sub === 'string' && sub !== '') return prefix + bounded(sub);
        if (typeof sub === 'number') return prefix + String(sub);
        return ipPrefix + ipv6Network(ctx.clientIp, ipv6Bits);
      };
    }
    case 'header': {
      const prefix = `${scope}|h:`;
      const name = spec.name;
      return (req) => {
        const value = req.headers[name];
        const text = Array.isArray(value) ? value.join(',') : value;
        if (text !== undefined && text !== '') return prefix + bounded(text);
        return ipPrefix + client(req);
      };
    }
  }
}
