import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { stringify } from 'yaml';
import { request, sleep } from './helpers/net.js';
import { type Instance, start } from './helpers/reload.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box: the dashboard page in Debian's Chromium (driven by playwright-core, which never
 * downloads a browser), served by the admin listener of the real CLI with two upstreams.
 * Each state is saved as a screenshot in the config's temp directory.
 */

const CHROMIUM = '/usr/bin/chromium';
const missing = existsSync(CHROMIUM)
  ? false
  : `chromium is not installed at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`;
if (missing) console.warn(`# SKIP dashboard browser tests: ${missing}`);

const TOKEN = 'dashboard-admin-token-0123';
const SEEN_WITHIN = 15_000;

/** Polls `check` (reading the page) until it holds, failing after SEEN_WITHIN. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + SEEN_WITHIN;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not seen within ${SEEN_WITHIN} ms: ${what}`);
    await sleep(100);
  }
}

describe('the dashboard page in a real browser', { skip: missing }, () => {
  let a: Upstream;
  let b: Upstream;
  let gw: Instance;
  let browser: Browser;
  let page: Page;
  let shots = '';
  const problems: string[] = [];
  const config = (): Record<string, unknown> => ({
    ...gw.base,
    admin: { ...(gw.base.admin as object), token: TOKEN },
  });
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const write = (body: Record<string, unknown>) => writeFile(gw.file, stringify(body));

  before(async () => {
    a = await startUpstream();
    b = await startUpstream();
    gw = await start(
      {
        admin: { token: TOKEN },
        upstreams: {
          api: {
            targets: [{ url: a.url }, { url: b.url }],
            balance: 'round_robin',
            outlier_detection: { consecutive_failures: 1 },
            retry: { attempts: 0 },
          },
        },
        routes: [
          { path: '/api/*', upstream: 'api', middleware: ['metrics'] },
          { path: '/plain', target: a.url },
        ],
        metrics: {},
      },
      { workers: 2 },
    );
    shots = dirname(gw.file);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless=new', '--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // A CSP violation or a script error shows up here.
    page.on('console', (m) => {
      // The page's first calls are refused until the token is given: that is the design.
      if (m.type() === 'error' && !m.text().includes('status of 401')) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
  });
  after(async () => {
    await browser?.close();
    await gw?.gw.stop();
    await a?.close();
    await b?.close();
  });

  test('asks for admin.token once, then lists the routes with their rates', async () => {
    for (let i = 0; i < 40; i++) assert.equal((await request(`${gw.gw.url}/api/items/${i}`)).status, 200);
    await page.goto(`${gw.admin}/`);
    await page.locator('#token-form').waitFor({ state: 'visible' });
    await shot('1-token');
    await page.fill('#token', TOKEN);
    await page.click('#token-form button');
    const api = page.locator('tr[data-route="/api/*"]');
    await eventually('a request rate on /api/*', async () => Number(await api.getAttribute('data-rate')) > 0);
    assert.match(await api.innerText(), /upstream api/);
    assert.equal(await api.locator('svg.spark polyline').count(), 1);
    assert.match(await page.locator('tr[data-route="/plain"]').innerText(), /no metrics/);
    assert.equal(await page.locator('#workers tbody tr').count(), 2);
    await shot('2-routes');
    // Readable on a phone: nothing wider than the screen but the tables' own scroll boxes.
    await page.setViewportSize({ width: 390, height: 844 });
    const [wide, screen] = await page.evaluate<number[]>(
      '[document.documentElement.scrollWidth, window.innerWidth]',
    );
    assert.ok(
      wide !== undefined && screen !== undefined && wide <= screen,
      `the page is ${wide} px wide on a ${screen} px screen`,
    );
    await shot('3-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('a killed endpoint turns ejected, and its 502 is listed with its request id', async () => {
    await b.close();
    let failed: string | undefined;
    for (let i = 0; i < 10 && failed === undefined; i++) {
      const id = `dashboard-test-${i}`;
      const reply = await request(`${gw.gw.url}/api/down?access_token=secret`, {
        headers: { 'x-request-id': id },
      });
      if (reply.status === 502) failed = id;
    }
    assert.ok(failed, 'no request reached the closed endpoint');
    const row = page.locator(`tr[data-endpoint="api/127.0.0.1:${b.port}"]`);
    await eventually('the closed endpoint unhealthy or ejected', async () =>
      /^(unhealthy|ejected)$/.test((await row.getAttribute('data-state')) ?? ''),
    );
    assert.match(await row.innerText(), /ejected|unhealthy/);
    assert.match(
      (await page.locator(`tr[data-endpoint="api/127.0.0.1:${a.port}"]`).getAttribute('data-state')) ?? '',
      /healthy/,
    );
    const error = page.locator(`#errors tr[data-request-id="${failed}"]`);
    await error.waitFor({ timeout: SEEN_WITHIN });
    const text = await error.innerText();
    assert.match(text, /502/);
    assert.match(text, /PORTICO_ERR_UPSTREAM_UNAVAILABLE/);
    assert.match(text, /\/api\/\*/);
    assert.doesNotMatch(text, /secret|access_token/);
    await shot('4-ejected-and-errors');
  });

  test('a refused config edit shows its key path; an accepted one changes the hash', async () => {
    const before = await page.locator('#config-hash').getAttribute('data-hash');
    assert.ok(before);
    const base = config();
    const routes = base.routes as Record<string, unknown>[];
    await write({
      ...base,
      routes: [{ ...routes[0], middleware: ['metrics', 'no-such-middleware'] }, routes[1]],
    });
    const reload = page.locator('#last-reload[data-result="failure"]');
    await reload.waitFor({ timeout: SEEN_WITHIN });
    assert.match(await reload.locator('.key-path').first().innerText(), /^routes\[0\]\.middleware\[1\]$/);
    assert.match(await reload.innerText(), /config\.yaml:\d+:\d+/);
    await shot('5-reload-refused');

    await write({ ...base, routes: [...routes, { path: '/new', target: a.url, middleware: ['metrics'] }] });
    await eventually('a new config hash', async () => {
      const hash = await page.locator('#config-hash').getAttribute('data-hash');
      return hash !== null && hash !== before;
    });
    await page.locator('#last-reload[data-result="success"]').waitFor({ timeout: SEEN_WITHIN });
    await page.locator('tr[data-route="/new"]').waitFor({ timeout: SEEN_WITHIN });
    await shot('6-reloaded');
    assert.equal(await page.locator('#token-form').isVisible(), false, 'the token was asked for again');
    assert.deepEqual(problems, [], 'the page logged errors (CSP violations, script errors)');
    console.log(`# dashboard screenshots in ${shots}`);
  });
});
