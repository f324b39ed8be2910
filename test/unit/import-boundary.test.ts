import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The TypeScript sources (type-only imports count too: they are still a dependency).
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesUnder(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative specifiers of `import … from`, `export … from` and `import(…)`. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.[^'"]+)['"]/gm))
    found.push(match[1] as string);
  return found;
}

/** Every import from `side` that lands in `forbidden`, as `file → target`. */
function crossings(side: 'primary' | 'worker', forbidden: 'primary' | 'worker'): string[] {
  const out: string[] = [];
  for (const file of sourcesUnder(join(SRC, side))) {
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = relative(SRC, resolve(dirname(file), spec));
      if (target.split(/[\\/]/)[0] === forbidden) out.push(`${relative(SRC, file)} → ${spec}`);
    }
  }
  return out;
}

test('the scanner sees relative imports of every form', () => {
  const text = `import a from './a.js';\nimport type { B } from "../b.js";\nexport { c } from './c.js';\nconst d = await import('./d.js');\nimport './e.js';`;
  assert.deepEqual(importsOf(text), ['./a.js', '../b.js', './c.js', './d.js', './e.js']);
});

test('src/primary imports nothing from src/worker (shared code lives in src/shared)', () => {
  assert.ok(sourcesUnder(join(SRC, 'primary')).length > 5, `no sources found under ${SRC}`);
  assert.deepEqual(crossings('primary', 'worker'), []);
});

test('src/worker imports nothing from src/primary', () => {
  assert.ok(sourcesUnder(join(SRC, 'worker')).length > 5, `no sources found under ${SRC}`);
  assert.deepEqual(crossings('worker', 'primary'), []);
});
