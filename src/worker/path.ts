/*
 * Request-path normalisation. The gateway matches routes and forwards upstream the same
 * normalised path, so what was authorised is exactly what the upstream sees:
 * `/users/../admin`, `//admin`, `/%61dmin` and `/users/%2e%2e/admin` all become `/admin`
 * before routing. Encoded reserved characters such as `%2F` stay encoded (a `%2F` is data
 * inside a segment, not a separator).
 */

const HEX = /^[0-9A-Fa-f]{2}$/;

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2d || // -
    code === 0x2e || // .
    code === 0x5f || // _
    code === 0x7e // ~
  );
}

/** Percent-decodes unreserved characters and upper-cases the rest (RFC 3986 §6.2.2). */
function normalizeEncoding(path: string): string | null {
  let out = '';
  let last = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hex = path.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return null;
    const code = Number.parseInt(hex, 16);
    out += path.slice(last, i) + (isUnreserved(code) ? String.fromCharCode(code) : `%${hex.toUpperCase()}`);
    last = i + 3;
    i += 2;
  }
  return out + path.slice(last);
}

/**
 * Returns the normalised path, or `null` when it cannot be made safe (bad percent-encoding,
 * not origin-form, control characters). The common case (nothing to normalise) allocates nothing.
 */
export function normalizePath(path: string): string | null {
  if (path.charCodeAt(0) !== 0x2f) return null;
  const needsEncoding = path.includes('%');
  if (!needsEncoding && !path.includes('//') && !path.includes('/.') && !path.includes('\\')) return path;
  let decoded = needsEncoding ? normalizeEncoding(path) : path;
  if (decoded === null) return null;
  // Some upstreams (IIS, some frameworks) treat "\" as "/"; route on what they would see.
  if (decoded.includes('\\')) decoded = decoded.replaceAll('\\', '/');
  const input = decoded.split('/');
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < input.length; i++) {
    const segment = input[i] as string;
    const isLast = i === input.length - 1;
    trailingSlash = false;
    if (segment === '' || segment === '.') {
      trailingSlash = isLast;
    } else if (segment === '..') {
      out.pop();
      trailingSlash = isLast;
    } else {
      out.push(segment);
    }
  }
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailingSlash ? '/' : ''}`;
}

/** Decodes a captured path parameter for middleware; malformed UTF-8 is kept raw. */
export function decodeParam(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
