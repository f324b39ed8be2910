/**
 * The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750
 * §2.1), or `undefined` when there is no bearer credential.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined;
  // Compare the scheme without allocating a lower-cased copy of the whole header.
  if (header.charCodeAt(6) !== 0x20 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(7).trim();
  return token === '' ? undefined : token;
}
