import { readFile } from 'node:fs/promises';
import type { AdminAnswer, AdminEndpoint } from './server.js';

/*
 * The dashboard page: static files shipped in the package (`dashboard/` beside `dist/`),
 * served by the admin listener only, never by the gateway port. The page itself holds no
 * data and needs no token; everything it shows comes from `/admin/*`, which does.
 */

const ROOT = new URL('../../../../', import.meta.url); // the package root, from dist/src/primary/admin/

/**
 * Nothing inline, nothing from elsewhere: the page's script and styles are files of this
 * listener, and it only talks to it. Charts are SVG built through the DOM, not style attributes.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const FILES = [
  { path: '/', file: 'dashboard/index.html', contentType: 'text/html; charset=utf-8' },
  { path: '/dashboard.css', file: 'dashboard/dashboard.css', contentType: 'text/css; charset=utf-8' },
  { path: '/dashboard.js', file: 'dist/dashboard/app.js', contentType: 'text/javascript; charset=utf-8' },
  { path: '/favicon.svg', file: 'dashboard/favicon.svg', contentType: 'image/svg+xml' },
];

/** `GET /` and its files: each read at its first request, then kept (a few KB). */
export function pageEndpoints(): AdminEndpoint[] {
  return FILES.map(({ path, file, contentType }) => {
    let loaded: Promise<AdminAnswer> | undefined;
    return {
      method: 'GET',
      path,
      handle() {
        loaded ??= readFile(new URL(file, ROOT), 'utf8').then(
          (text) => ({ text, contentType, headers: HEADERS }),
          (err: unknown) => {
            loaded = undefined; // a package missing its files is a bug; do not cache the failure
            throw err;
          },
        );
        return loaded;
      },
    };
  });
}
