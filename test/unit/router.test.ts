import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TableRouter } from '../../src/worker/router.js';

const routes = [
  { path: '/users/*', value: 'users-wild' },
  { path: '/users/:id', methods: ['GET'], value: 'user-get' },
  { path: '/users/:id', methods: ['DELETE'], value: 'user-delete' },
  { path: '/users/me', methods: ['GET'], value: 'me' },
  { path: '/users', methods: ['GET', 'POST'], value: 'users' },
  { path: '/:org/repos/:repo', value: 'org-repo' },
  { path: '/acme/repos/:repo', value: 'acme-repo' },
  { path: '/files/*', methods: ['GET'], value: 'files' },
  { path: '/files/public/*', methods: ['GET'], value: 'public-files' },
  { path: '/*', methods: ['GET'], value: 'catch-all' },
  { path: '/posts/:id/comments/:cid', methods: ['GET'], value: 'comment' },
];
const router = new TableRouter(routes);

describe('TableRouter precedence (order in the file does not matter)', () => {
  const table: [
    method: string,
    path: string,
    value: string,
    params?: Record<string, string>,
    rest?: string,
  ][] = [
    ['GET', '/users', 'users'],
    ['GET', '/users/me', 'me'],
    ['GET', '/users/42', 'user-get', { id: '42' }],
    ['DELETE', '/users/42', 'user-delete', { id: '42' }],
    ['PATCH', '/users/42', 'users-wild', {}, '42'],
    ['GET', '/users/42/avatar', 'users-wild', {}, '42/avatar'],
    ['PUT', '/users', 'users-wild', {}, ''],
    ['GET', '/acme/repos/portico', 'acme-repo', { repo: 'portico' }],
    ['GET', '/other/repos/portico', 'org-repo', { org: 'other', repo: 'portico' }],
    ['GET', '/files/public/a/b.txt', 'public-files', {}, 'a/b.txt'],
    ['GET', '/files/private/a', 'files', {}, 'private/a'],
    ['GET', '/files', 'files', {}, ''],
    ['GET', '/filesystem', 'catch-all', {}, 'filesystem'],
    ['GET', '/', 'catch-all', {}, ''],
    ['HEAD', '/users/me', 'me'],
    ['GET', '/posts/1/comments/2', 'comment', { id: '1', cid: '2' }],
  ];
  for (const [method, path, value, params, rest] of table) {
    test(`${method} ${path} → ${value}`, () => {
      const match = router.match(method, path);
      assert.equal(match.kind, 'found');
      if (match.kind !== 'found') return;
      assert.equal(match.value, value);
      if (params) assert.deepEqual({ ...match.params }, params);
      if (rest !== undefined) assert.equal(match.rest, rest);
    });
  }

  test('file order does not change the winner', () => {
    const reversed = new TableRouter([...routes].reverse());
    for (const [method, path, value] of table) {
      const match = reversed.match(method, path);
      assert.equal(match.kind === 'found' && match.value, value, `${method} ${path}`);
    }
  });
});

describe('TableRouter misses', () => {
  test('method mismatch on a matched path is 405 with the allowed methods', () => {
    const r = new TableRouter([{ path: '/users/:id', methods: ['GET', 'PUT'], value: 1 }]);
    assert.deepEqual(r.match('POST', '/users/1'), { kind: 'method-not-allowed', allow: 'GET, HEAD, PUT' });
  });
  test('no route is not-found', () => {
    const r = new TableRouter([{ path: '/users', value: 1 }]);
    assert.equal(r.match('GET', '/orders').kind, 'not-found');
    assert.equal(r.match('GET', '/users/1').kind, 'not-found');
    assert.equal(r.match('GET', '/usersX').kind, 'not-found');
  });
  test('a parameter never matches an empty segment and trailing slash is significant', () => {
    const r = new TableRouter([{ path: '/users/:id', value: 1 }]);
    assert.equal(r.match('GET', '/users/').kind, 'not-found');
    assert.equal(r.match('GET', '/users/1/').kind, 'not-found');
  });
  test('a wildcard does not match a longer sibling segment', () => {
    const r = new TableRouter([{ path: '/users/*', value: 1 }]);
    assert.equal(r.match('GET', '/usersX').kind, 'not-found');
    assert.equal(r.match('GET', '/users').kind, 'found');
  });
});
