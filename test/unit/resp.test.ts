import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeCommand, readReplies, type RespReply } from '../../src/primary/ratelimit/resp.js';

const read = (text: string) => readReplies(Buffer.from(text));

test('encodeCommand: an array of bulk strings, lengths in bytes', () => {
  assert.equal(encodeCommand(['AUTH', 'pä']), '*2\r\n$4\r\nAUTH\r\n$3\r\npä\r\n');
});

test('readReplies: each kind of reply the probe can meet', () => {
  const cases: [string, RespReply[]][] = [
    ['+OK\r\n', ['OK']],
    [':42\r\n', [42]],
    ['$-1\r\n', [null]],
    ['*-1\r\n', [null]],
    ['$5\r\na\r\nbc\r\n', ['a\r\nbc']],
    ['*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n', [['127.0.0.1', '6380']]],
    ['+OK\r\n*1\r\n*1\r\n:1\r\n', ['OK', [[1]]]],
  ];
  for (const [text, replies] of cases) assert.deepEqual(read(text).replies, replies, JSON.stringify(text));
  const [error] = read('-WRONGPASS invalid username-password pair\r\n').replies;
  assert.ok(error instanceof Error);
  assert.equal(error.message, 'WRONGPASS invalid username-password pair');
});

test('readReplies: a reply cut short is left for more data', () => {
  for (const text of ['+OK', '$5\r\nab', '*2\r\n$1\r\na\r\n', '*2\r\n$1\r\na\r\n$1\r\n']) {
    assert.deepEqual(read(text).replies, [], JSON.stringify(text));
  }
  const { replies, done } = read('+OK\r\n$3\r\nab');
  assert.deepEqual([replies, done], [['OK'], 5]);
});
