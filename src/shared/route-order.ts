import type { PatternSegment, RoutePattern } from './route-pattern.js';

/**
 * Orders candidates so the most specific wins regardless of file order: more segments
 * first; at equal length a literal segment beats a parameter at the first position where
 * they differ. The router sorts its parameterised and wildcard groups with this, and the
 * admin API lists routes with it, so the listing is the order requests are matched in.
 */
export function compareSpecificity(a: RoutePattern, b: RoutePattern): number {
  if (a.segments.length !== b.segments.length) return b.segments.length - a.segments.length;
  for (let i = 0; i < a.segments.length; i++) {
    const ak = (a.segments[i] as PatternSegment).kind;
    const bk = (b.segments[i] as PatternSegment).kind;
    if (ak !== bk) return ak === 'literal' ? -1 : 1;
  }
  return 0;
}

const KIND_RANK = { exact: 0, param: 1, wildcard: 2 } as const;

/**
 * The order the router tries routes in: exact paths (a map lookup, file order among equal
 * paths), then parameterised ones, then wildcards longest prefix first. Stable: routes that
 * tie keep their file order, as in the router.
 */
export function compareMatchOrder(a: RoutePattern, b: RoutePattern): number {
  const byKind = KIND_RANK[a.kind] - KIND_RANK[b.kind];
  if (byKind !== 0 || a.kind === 'exact') return byKind;
  return compareSpecificity(a, b);
}
