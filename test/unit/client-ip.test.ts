import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { describe, test } from 'node:test';
import { clientIpOf, forwardedAddress } from '../../src/worker/client-ip.js';

describe('forwardedAddress', () => {
  const table: [entry: string, expected: string][] = [
    ['1.2.3.4', '1.2.3.4'],
    [' 1.2.3.4 ', '1.2.3.4'],
    ['1.2.3.4:1111', '1.2.3.4'],
    ['2001:db8::1', '2001:db8::1'],
    ['::1', '::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['[::ffff:10.0.0.1]:80', '10.0.0.1'],
    ['unknown', 'unknown'],
  ];
  for (const [entry, expected] of table) {
    test(`${JSON.stringify(entry)} → ${expected}`, () => assert.equal(forwardedAddress(entry), expected));
  }
});

describe('clientIpOf', () => {
  const trusted = new BlockList();
  trusted.addSubnet('10.0.0.0', 8);
  test('trusted hops written with a port are still recognised as trusted', () => {
    assert.equal(clientIpOf('10.0.0.1', '1.2.3.4:5555, 10.0.0.2:80', trusted), '1.2.3.4');
  });
  test('an untrusted peer’s X-Forwarded-For is ignored', () => {
    assert.equal(clientIpOf('9.9.9.9', '1.2.3.4', trusted), '9.9.9.9');
  });
});
