import { type Document, isPair, isScalar, isSeq, parseDocument, Scalar, visit } from 'yaml';

/** One problem found while expanding `${VAR}` references, with the key path of the value. */
export interface ExpandProblem {
  path: (string | number)[];
  message: string;
}

// ${NAME} or ${NAME:-default}; `$${` escapes a literal `${`.
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** Expands `${VAR}` / `${VAR:-default}` in one string; unset without default is a problem. */
export function expandString(
  text: string,
  env: NodeJS.ProcessEnv,
  onMissing: (name: string) => void,
): string {
  if (!text.includes('${')) return text;
  return text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${';
    const found = env[name as string];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    onMissing(name as string);
    return '';
  });
}

/**
 * The scalar an expansion reads as (`8080` → 8080, `true` → true), or the text itself when
 * it reads as anything else: a collection, null, a comment, or not YAML at all (`[1, 2`). A variable
 * never adds structure to the config, only a value.
 */
function typedValue(expanded: string): unknown {
  const doc = parseDocument(expanded);
  const node = doc.contents;
  // `8080 # note` would read as 8080: a comment is YAML syntax too, so the text stays text.
  if (doc.errors.length > 0 || !isScalar(node) || node.comment || doc.comment) return expanded;
  const value: unknown = node.value;
  return value === null ? expanded : value;
}

/**
 * Expands environment references in every scalar value of a parsed YAML document, in place,
 * so secrets can stay out of the file. An unquoted value that is one whole reference takes
 * the type its expansion reads as (`port: ${PORT:-8080}` is a number); quoted values always
 * stay strings (`secret: "${SECRET}"`). Returns, per key path (`a.b[0]`), the variables its
 * value came from, so a value that does not fit can be blamed on its variable.
 */
export function expandEnvInDocument(
  doc: Document,
  env: NodeJS.ProcessEnv,
  problems: ExpandProblem[],
  formatPath: (path: (string | number)[]) => string,
): Map<string, string[]> {
  const sources = new Map<string, string[]>();
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const source = node.value;
      const path = keyPath(ancestors, node);
      const expanded = expandString(source, env, (name) =>
        problems.push({ path, message: `environment variable ${name} is not set and has no default` }),
      );
      const names = [...source.matchAll(REFERENCE)].flatMap((m) => (m[1] === undefined ? [] : [m[1]]));
      if (names.length > 0) sources.set(formatPath(path), names);
      if (node.type === Scalar.PLAIN && WHOLE_REFERENCE.test(source) && expanded !== '') {
        node.value = typedValue(expanded);
      } else {
        node.value = expanded;
      }
    },
  });
  return sources;
}

function keyPath(ancestors: readonly unknown[], node: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  for (let i = 0; i < ancestors.length; i++) {
    const item = ancestors[i];
    const child = i + 1 < ancestors.length ? ancestors[i + 1] : node;
    if (isSeq(item)) path.push(item.items.indexOf(child));
    else if (isPair(item)) path.push(String(isScalar(item.key) ? item.key.value : item.key));
  }
  return path;
}
