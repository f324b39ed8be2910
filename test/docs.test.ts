import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigReference } from '../src/shared/config/reference.js';
import { ERRORS } from '../src/shared/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test("the README's config reference is the one generated from the schema (npm run docs:config)", () => {
  const start = readme.indexOf('-->', readme.indexOf('<!-- config-reference:start')) + 3;
  const end = readme.indexOf('<!-- config-reference:end -->');
  assert.equal(readme.slice(start, end).trim(), renderConfigReference());
});

test('every error code is documented in the README with its status or exit code and message', () => {
  for (const [code, entry] of Object.entries(ERRORS)) {
    const kind = 'status' in entry ? String(entry.status) : `exit ${entry.exit}`;
    assert.ok(readme.includes(`| \`${code}\` | ${kind} | ${entry.message} |`), code);
  }
});
