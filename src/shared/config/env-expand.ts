import { type Document, isPair, isScalar, isSeq, parse, Scalar, visit } from 'yaml';

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
 * Expands environment references in every scalar value of a parsed YAML document, in place,
 * so secrets can stay out of the file. An unquoted value that is one whole reference takes
 * the type its expansion reads as (`port: ${PORT:-8080}` is a number); quoted values always
 * stay strings (`secret: "${SECRET}"`).
 */
export function expandEnvInDocument(doc: Document, env: NodeJS.ProcessEnv, problems: ExpandProblem[]): void {
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const source = node.value;
      const path = keyPath(ancestors, node);
      const expanded = expandString(source, env, (name) =>
        problems.push({ path, message: `environment variable ${name} is not set and has no default` }),
      );
      if (node.type === Scalar.PLAIN && WHOLE_REFERENCE.test(source) && expanded !== '') {
        const typed: unknown = parse(expanded);
        node.value = typed === null || typeof typed === 'object' ? expanded : typed;
      } else {
        node.value = expanded;
      }
    },
  });
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
