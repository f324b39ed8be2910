import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeParam, normalizePath } from '../../src/worker/path.js';

describe('normalizePath', () => {
  const table: [input: string, expected: string | null][] = [
    ['/users', '/users'],
    ['/users/', '/users/'],
    ['/', '/'],
    ['/users/../admin', '/admin'],
    ['/users/./1', '/users/1'],
    ['//admin', '/admin'],
    ['/users//1', '/users/1'],
    ['/%2e%2e/admin', '/admin'],
    ['/users/%2E%2E/admin', '/admin'],
    ['/users/%2e%2e%2fadmin', '/users/..%2Fadmin'],
    ['/%61dmin', '/admin'],
    ['/a%20b', '/a%20b'],
    ['/a%2fb', '/a%2Fb'],
    ['/a/b/..', '/a/'],
    ['/a/..', '/'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/a\\..\\admin', '/admin'],
    ['/bad%zz', null],
    ['/bad%2', null],
    ['users', null],
    ['http://evil/admin', null],
    ['*', null],
  ];
  for (const [input, expected] of table) {
    test(`${input} → ${expected}`, () => assert.equal(normalizePath(input), expected));
  }
  test('the common case returns the same string', () => {
    const path = '/users/42/posts';
    assert.equal(normalizePath(path), path);
  });
});

describe('decodeParam', () => {
  test('decodes percent-encoding and keeps malformed UTF-8 raw', () => {
    assert.equal(decodeParam('j%C3%BCrgen'), 'jürgen');
    assert.equal(decodeParam('a%2Fb'), 'a/b');
    assert.equal(decodeParam('%FF'), '%FF');
  });
});
