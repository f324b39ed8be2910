import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileUpstreamPath } from '../../src/worker/proxy/upstream-path.js';

test('rewrite substitutes params (longest name first) and the wildcard', () => {
  const f = compileUpstreamPath('/users/:id/:idx/*', {
    rewrite: '/v2/:idx/accounts/:id/*',
    stripPrefix: false,
    basePath: '/',
  });
  assert.equal(f('/users/7/8/a/b', { id: '7', idx: '8' }, 'a/b'), '/v2/8/accounts/7/a/b');
});
test('strip_prefix forwards only the wildcard part, under the target base path', () => {
  const f = compileUpstreamPath('/api/*', { stripPrefix: true, basePath: '/base/' });
  assert.equal(f('/api/x/y', {}, 'x/y'), '/base/x/y');
  assert.equal(f('/api', {}, ''), '/base/');
});
test('plain routes keep the path and prepend the base path', () => {
  assert.equal(compileUpstreamPath('/u', { stripPrefix: false, basePath: '/' })('/u', {}, ''), '/u');
  assert.equal(compileUpstreamPath('/u', { stripPrefix: false, basePath: '/svc' })('/u', {}, ''), '/svc/u');
});
