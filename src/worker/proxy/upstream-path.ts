import { parseRoutePattern } from '../../shared/route-pattern.js';

/** Computes the upstream path (without query) from the normalised request path and the match. */
export type UpstreamPath = (path: string, params: Readonly<Record<string, string>>, rest: string) => string;

type Piece = { literal: string } | { param: string } | { wildcard: true };

/**
 * Compiles a route's `rewrite`/`strip_prefix` settings and the target's base path into one
 * function, once at start-up. Params are substituted in their raw (still percent-encoded)
 * form so the upstream receives exactly the bytes the client sent.
 */
export function compileUpstreamPath(
  routePath: string,
  options: { rewrite?: string | undefined; stripPrefix: boolean; basePath: string },
): UpstreamPath {
  const base = options.basePath === '/' ? '' : options.basePath.replace(/\/$/, '');
  if (options.rewrite !== undefined) {
    const pieces: Piece[] = [];
    const pattern = parseRoutePattern(routePath);
    const known = 'error' in pattern ? [] : pattern.paramNames;
    // Longest names first so `:id` does not eat the start of `:idx`.
    const names = [...known].sort((a, b) => b.length - a.length);
    let text = options.rewrite;
    while (text.length > 0) {
      const colon = text.indexOf(':');
      const star = text.indexOf('*');
      const next = [colon, star].filter((i) => i >= 0).sort((a, b) => a - b)[0];
      if (next === undefined) {
        pieces.push({ literal: text });
        break;
      }
      if (next > 0) pieces.push({ literal: text.slice(0, next) });
      if (next === star) {
        pieces.push({ wildcard: true });
        text = text.slice(next + 1);
        continue;
      }
      const name = names.find((n) => text.startsWith(n, next + 1));
      if (name === undefined) {
        pieces.push({ literal: ':' });
        text = text.slice(next + 1);
      } else {
        pieces.push({ param: name });
        text = text.slice(next + 1 + name.length);
      }
    }
    return (_path, params, rest) => {
      let out = base;
      for (const piece of pieces) {
        if ('literal' in piece) out += piece.literal;
        else if ('param' in piece) out += params[piece.param] ?? '';
        else out += rest;
      }
      // `/files/*` rewritten to `/store/*` with an empty remainder gives `/store/`; keep it.
      return out.replace(/\/{2,}/g, '/');
    };
  }
  if (options.stripPrefix) return (_path, _params, rest) => `${base}/${rest}`;
  if (base === '') return (path) => path;
  return (path) => base + path;
}
