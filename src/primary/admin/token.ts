import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (text: string) => createHash('sha256').update(text).digest();
const BEARER = /^Bearer +(\S+) *$/i;

/**
 * Checks `Authorization: Bearer <token>` against `admin.token`. Both sides are hashed first:
 * `timingSafeEqual` needs equal lengths, and comparing digests hides the token's length too.
 */
export function bearerCheck(
  token: string,
): (authorization: string | undefined) => 'ok' | 'missing' | 'invalid' {
  const expected = digest(token);
  return (authorization) => {
    if (authorization === undefined || authorization === '') return 'missing';
    const given = BEARER.exec(authorization)?.[1];
    if (given === undefined) return 'invalid';
    return timingSafeEqual(digest(given), expected) ? 'ok' : 'invalid';
  };
}
