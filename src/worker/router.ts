import { compareSpecificity } from '../shared/route-order.js';
import { type PatternSegment, parseRoutePattern, type RoutePattern } from '../shared/route-pattern.js';

/** The minimal contract of a router: one method, so another implementation can be swapped in. */
export interface Router<T> {
  match(method: string, path: string): RouteMatch<T>;
}

export type RouteMatch<T> =
  | { kind: 'found'; value: T; params: Record<string, string>; rest: string }
  | { kind: 'method-not-allowed'; allow: string }
  | { kind: 'not-found' };

export interface RouteDefinition<T> {
  path: string;
  /** `undefined` allows every method. A route allowing GET also answers HEAD. */
  methods?: readonly string[];
  value: T;
}

interface Entry<T> {
  pattern: RoutePattern;
  methods: ReadonlySet<string> | null;
  value: T;
}

const NOT_FOUND = { kind: 'not-found' } as const;
const NO_PARAMS: Record<string, string> = Object.freeze({});

function matchSegments(pattern: RoutePattern, parts: readonly string[]): boolean {
  const segments = pattern.segments;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as PatternSegment;
    const part = parts[i + 1] as string;
    if (segment.kind === 'literal' ? segment.value !== part : part === '') return false;
  }
  return true;
}

/**
 * A router built once from the config. Exact paths are a map lookup; parameterised routes
 * are grouped by segment count; wildcards are tried longest prefix first.
 *
 * @example
 * const router = new TableRouter([{ path: '/users/:id', methods: ['GET'], value: 'users' }]);
 * router.match('GET', '/users/42'); // { kind: 'found', value: 'users', params: { id: '42' }, rest: '' }
 */
export class TableRouter<T> implements Router<T> {
  readonly #exact = new Map<string, Entry<T>[]>();
  readonly #params = new Map<number, Entry<T>[]>();
  readonly #wildcards: Entry<T>[] = [];

  constructor(definitions: readonly RouteDefinition<T>[]) {
    for (const def of definitions) {
      const pattern = parseRoutePattern(def.path);
      if ('error' in pattern) throw new Error(`invalid route path "${def.path}": ${pattern.error}`);
      const methods = def.methods ? new Set(def.methods) : null;
      if (methods?.has('GET')) methods.add('HEAD');
      const entry: Entry<T> = { pattern, methods, value: def.value };
      if (pattern.kind === 'exact') {
        const key =
          pattern.segments.length === 0
            ? '/'
            : `/${pattern.segments.map((s) => (s as { value: string }).value).join('/')}`;
        this.#push(this.#exact, key, entry);
      } else if (pattern.kind === 'param') {
        this.#push(this.#params, pattern.segments.length, entry);
      } else {
        this.#wildcards.push(entry);
      }
    }
    for (const list of this.#params.values()) list.sort((a, b) => compareSpecificity(a.pattern, b.pattern));
    this.#wildcards.sort((a, b) => compareSpecificity(a.pattern, b.pattern));
  }

  #push<K>(map: Map<K, Entry<T>[]>, key: K, entry: Entry<T>): void {
    const list = map.get(key);
    if (list) list.push(entry);
    else map.set(key, [entry]);
  }

  match(method: string, path: string): RouteMatch<T> {
    let allow: Set<string> | null = null;
    const exact = this.#exact.get(path);
    if (exact) {
      for (const entry of exact) {
        if (entry.methods === null || entry.methods.has(method))
          return { kind: 'found', value: entry.value, params: NO_PARAMS, rest: '' };
        allow = addAllowed(allow, entry);
      }
    }
    const parts = path.split('/');
    // A trailing slash is significant for exact and parameterised routes: `/users/` is not `/users/:id`.
    const candidates = this.#params.get(parts.length - 1);
    if (candidates) {
      for (const entry of candidates) {
        if (!matchSegments(entry.pattern, parts)) continue;
        if (entry.methods === null || entry.methods.has(method)) {
          return { kind: 'found', value: entry.value, params: capture(entry.pattern, parts), rest: '' };
        }
        allow = addAllowed(allow, entry);
      }
    }
    for (const entry of this.#wildcards) {
      const n = entry.pattern.segments.length;
      // `/users/*` matches `/users`, `/users/` and everything below, never `/usersX`.
      if (parts.length - 1 < n || !matchSegments(entry.pattern, parts)) continue;
      if (entry.methods === null || entry.methods.has(method)) {
        const rest = parts.length - 1 > n ? parts.slice(n + 1).join('/') : '';
        return { kind: 'found', value: entry.value, params: capture(entry.pattern, parts), rest };
      }
      allow = addAllowed(allow, entry);
    }
    return allow ? { kind: 'method-not-allowed', allow: [...allow].sort().join(', ') } : NOT_FOUND;
  }
}

function addAllowed<T>(allow: Set<string> | null, entry: Entry<T>): Set<string> {
  const out = allow ?? new Set<string>();
  for (const m of entry.methods ?? []) out.add(m);
  return out;
}

function capture(pattern: RoutePattern, parts: readonly string[]): Record<string, string> {
  if (pattern.paramNames.length === 0) return NO_PARAMS;
  const params: Record<string, string> = {};
  pattern.segments.forEach((segment, i) => {
    if (segment.kind === 'param') params[segment.name] = parts[i + 1] as string;
  });
  return params;
}
