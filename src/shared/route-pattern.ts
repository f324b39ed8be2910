/**
 * A route path as written in the config: `/users` (exact), `/users/:id` (parameterised) or
 * `/users/*` (prefix wildcard). Parsed once at start-up; the router and the config
 * validator share this one parser so they can never disagree about what a path means.
 */
export type PatternSegment = { kind: 'literal'; value: string } | { kind: 'param'; name: string };

export interface RoutePattern {
  kind: 'exact' | 'param' | 'wildcard';
  /** Segments before the wildcard (if any). `/` has zero segments. */
  segments: PatternSegment[];
  paramNames: string[];
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Characters allowed in a literal segment: RFC 3986 pchar without percent-encoding.
const LITERAL = /^[A-Za-z0-9\-._~!$&'()+,;=@]+$/;

export function parseRoutePattern(path: string): RoutePattern | { error: string } {
  if (!path.startsWith('/')) return { error: 'must start with "/"' };
  let body = path.slice(1);
  let wildcard = false;
  if (body === '*' || body.endsWith('/*')) {
    wildcard = true;
    body = body.slice(0, -1);
    if (body.endsWith('/')) body = body.slice(0, -1);
  }
  const segments: PatternSegment[] = [];
  const paramNames: string[] = [];
  if (body !== '') {
    for (const raw of body.split('/')) {
      if (raw === '') return { error: 'must not contain empty segments ("//") or a trailing "/"' };
      if (raw.includes('*')) return { error: '"*" is only allowed as the last segment, as in /prefix/*' };
      if (raw.startsWith(':')) {
        const name = raw.slice(1);
        if (!PARAM_NAME.test(name)) return { error: `invalid parameter name "${raw}"` };
        if (paramNames.includes(name)) return { error: `parameter ":${name}" appears twice` };
        paramNames.push(name);
        segments.push({ kind: 'param', name });
      } else {
        if (!LITERAL.test(raw) || raw === '.' || raw === '..') {
          return { error: `invalid path segment "${raw}"` };
        }
        segments.push({ kind: 'literal', value: raw });
      }
    }
  }
  const kind = wildcard ? 'wildcard' : paramNames.length > 0 ? 'param' : 'exact';
  return { kind, segments, paramNames };
}
