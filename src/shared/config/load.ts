import { type Document, isMap, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import { dirname, resolve } from 'node:path';
import { parseRoutePattern } from '../route-pattern.js';
import type { AuthPlan, ServerTlsPlan } from '../plan/types.js';
import { AUTH_DEFAULTS } from './auth-schema.js';
import { keyFileReader, resolveAuthSettings } from './auth-settings.js';
import { applyDeprecatedAliases } from './deprecated-keys.js';
import { expandEnvInDocument } from './env-expand.js';
import { ConfigError } from './errors.js';
import { checkServerTls } from './server-tls.js';
import { TlsFileReader } from './tls-files.js';
import { type Config, configSchema, HTTP_METHODS, withImpliedSections } from './schema.js';

export type KeyPath = (string | number)[];

export interface ConfigProblem {
  path: KeyPath;
  message: string;
}

/** What the validator needs to know about middleware names; supplied by the gateway's registry. */
export interface MiddlewareCatalog {
  has(name: string): boolean;
  names(): string[];
  /** Whether an `auth.type` verifier of this name exists (built in or registered). */
  hasVerifier(type: string): boolean;
}

export { ConfigError };

/** `routes[2].middleware[1]` */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(root)' : out;
}

/**
 * Expands and validates a YAML config. Throws `ConfigError` listing every problem
 * (file, line, key path, reason); never returns a half-valid config.
 */
export function parseConfigText(
  text: string,
  file: string,
  catalog: MiddlewareCatalog,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  return loadConfigText(text, file, catalog, env).config;
}

/** A validated config and, per route that lists `auth`, its resolved auth settings. */
export interface LoadedConfig {
  config: Config;
  /** By route index; `null` for routes without `auth`. */
  auth: (AuthPlan | null)[];
  /**
   * Absolute paths of every TLS file the config names (read by `TlsFileReader` during
   * validation): watched like the config file, a change reloads.
   */
  tlsFiles: string[];
  /** Issue 15: `server.tls` with its files read and checked; null without it. */
  serverTls: ServerTlsPlan | null;
}

/**
 * `parseConfigText`, also returning what validation had to resolve anyway (auth settings,
 * key files read), so the plan is built without resolving it a second time.
 */
export function loadConfigText(
  text: string,
  file: string,
  catalog: MiddlewareCatalog,
  env: NodeJS.ProcessEnv = process.env,
): LoadedConfig {
  if (text.trim() === '') throw new ConfigError([`${file}: the file is empty`]);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `${file}:${line}:${col}: YAML syntax: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  if (doc.contents === null) throw new ConfigError([`${file}: the file has no settings, only comments`]);
  const problems: ConfigProblem[] = [];
  const fromEnv = expandEnvInDocument(doc, env, problems, formatKeyPath);
  let auth: (AuthPlan | null)[] = [];
  let serverTls: ServerTlsPlan | null = null;
  // One reader per validation: each TLS file is read once, and all of them are watched.
  const tls = new TlsFileReader(configDirOf(file), problems);
  const raw = applyDeprecatedAliases(toPlainValue(doc, lineCounter, file));
  const result = configSchema.safeParse(raw, { reportInput: true });
  // Middleware names are checked even when other keys are wrong, so one run shows everything.
  checkMiddlewareNames(raw, catalog, problems);
  if (result.success) {
    checkDuplicateRoutes(result.data, problems);
    auth = checkAuth(result.data, catalog, file, problems);
    serverTls = checkServerTls(result.data.server, tls, problems) ?? null;
  } else {
    // A value emptied by a missing variable fails validation too; report only the cause.
    const blamed = new Set(problems.map((p) => formatKeyPath(p.path)));
    for (const problem of zodProblems(result.error.issues)) {
      const at = formatKeyPath(problem.path);
      if (blamed.has(at)) continue;
      const names = fromEnv.get(at);
      // Zod's messages do not show the value (it may be a secret): name where it came from.
      if (names !== undefined)
        problem.message += ` (the value of ${names.map((n) => `\${${n}}`).join(', ')})`;
      problems.push(problem);
    }
  }
  if (problems.length > 0) {
    // In file order, as a reader fixes them.
    const located = problems.map((p) => ({ at: position(doc, lineCounter, p.path), p }));
    located.sort((a, b) => a.at.line - b.at.line || a.at.col - b.at.col);
    throw new ConfigError(
      located.map(
        ({ at, p }) =>
          `${file}${at.line ? `:${at.line}:${at.col}` : ''}: ${formatKeyPath(p.path)}: ${p.message}`,
      ),
    );
  }
  return {
    config: withImpliedSections((result as { data: Config }).data),
    auth,
    tlsFiles: tls.files(),
    serverTls,
  };
}

/** Aliases one node may expand: enough for sharing a block, far too few for a "billion laughs". */
const MAX_ALIAS_COUNT = 100;

function toPlainValue(doc: Document, lines: LineCounter, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    // yaml throws (a ReferenceError) when aliases expand past the cap; point at the first alias.
    let at = '';
    visit(doc, {
      Alias(_key, node) {
        if (node.range) {
          const { line, col } = lines.linePos(node.range[0]);
          at = `:${line}:${col}`;
        }
        return visit.BREAK;
      },
    });
    const reason = /alias/i.test((err as Error).message)
      ? `YAML aliases expand too far (over ${MAX_ALIAS_COUNT} uses of one node: a "billion laughs" document?)`
      : `YAML: ${(err as Error).message}`;
    throw new ConfigError([`${file}${at}: ${reason}`]);
  }
}

function zodProblems(
  issues: readonly { code: string; path: PropertyKey[]; message: string; keys?: string[] }[],
) {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys' && issue.keys) {
      for (const key of issue.keys) out.push({ path: [...path, key], message: 'unknown key' });
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}

/** Names the registry does not know: the article's gateway skipped them silently. */
function checkMiddlewareNames(raw: unknown, catalog: MiddlewareCatalog, problems: ConfigProblem[]): void {
  const routes = (raw as { routes?: unknown }).routes;
  if (!Array.isArray(routes)) return;
  routes.forEach((route: unknown, index) => {
    const names = (route as { middleware?: unknown } | null)?.middleware;
    if (!Array.isArray(names)) return;
    names.forEach((name: unknown, i) => {
      if (typeof name !== 'string') return; // the schema reports the type
      const path = ['routes', index, 'middleware', i];
      if (!catalog.has(name)) {
        problems.push({
          path,
          message: `unknown middleware "${name}" (known: ${catalog.names().join(', ')})`,
        });
      }
    });
  });
}

/**
 * Every route that uses `auth` must end up with complete, consistent verifier settings;
 * returns them by route index.
 */
function checkAuth(
  config: Config,
  catalog: MiddlewareCatalog,
  file: string,
  problems: ConfigProblem[],
): (AuthPlan | null)[] {
  const readKey = keyFileReader(configDirOf(file));
  const reported = new Set<string>();
  return config.routes.map((route, index) => {
    if (!route.middleware.includes('auth')) return null;
    const result = resolveAuthSettings(
      config.auth,
      route.auth,
      index,
      (t) => catalog.hasVerifier(t),
      AUTH_DEFAULTS,
      readKey,
    );
    if (!('problems' in result)) return result.settings;
    for (const problem of result.problems) {
      // A problem in the global section would repeat for every route using it: say it once.
      const key = `${formatKeyPath(problem.path)}: ${problem.message}`;
      if (reported.has(key)) continue;
      reported.add(key);
      problems.push(problem);
    }
    return null;
  });
}

/** The directory relative paths in a config resolve against (the cwd for an inline config). */
export function configDirOf(file: string): string {
  return file.startsWith('<') ? process.cwd() : dirname(resolve(file));
}

/** Two routes of the same shape whose methods overlap: the second could never be reached. */
function checkDuplicateRoutes(config: Config, problems: ConfigProblem[]): void {
  const seen = new Map<string, { index: number; methods: Set<string> }[]>();
  config.routes.forEach((route, index) => {
    const pattern = parseRoutePattern(route.path);
    if ('error' in pattern) return;
    // `/users/:id` and `/users/:name` are the same route shape.
    const shape = `${pattern.kind}:${pattern.segments.map((s) => (s.kind === 'param' ? ':' : s.value)).join('/')}`;
    const methods = new Set<string>(route.methods ?? HTTP_METHODS);
    const earlier = seen.get(shape) ?? [];
    for (const other of earlier) {
      const overlap = [...methods].filter((m) => other.methods.has(m));
      if (overlap.length > 0) {
        problems.push({
          path: ['routes', index, 'path'],
          message: `duplicates routes[${other.index}] (${route.path}) for ${overlap.join(', ')}`,
        });
      }
    }
    earlier.push({ index, methods });
    seen.set(shape, earlier);
  });
}

function position(doc: Document, lines: LineCounter, path: KeyPath): { line: number; col: number } {
  // Walk up to the deepest node that exists, so unknown keys point at their parent at worst.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) {
      // For a map key, point at the key itself rather than its value when we can.
      const parent = depth > 0 ? doc.getIn(path.slice(0, depth - 1), true) : undefined;
      let offset = node.range[0];
      const last = path[depth - 1];
      if (isMap(parent) && typeof last === 'string') {
        const pair = parent.items.find((p) => (p.key as { value?: unknown })?.value === last);
        const keyRange = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
        if (keyRange) offset = keyRange[0];
      } else if (isSeq(parent)) {
        offset = node.range[0];
      }
      return lines.linePos(offset);
    }
  }
  return { line: 0, col: 0 };
}
