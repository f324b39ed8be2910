/*
 * Issue 18's watcher: a headless Chromium (Debian's, driven by playwright-core, which never
 * downloads a browser) with the dashboard page open on a gateway's admin listener, polling as
 * it does for an operator. Like the load generator it is not the target: its CPU is recorded
 * as its own group, never in the gateway's, so only what the watching costs the gateway's
 * primary and workers shows in the target's CPU µs/request. Started by the bench process,
 * it runs on that process's CPUs: the load generator's cores when the layout pins them.
 */
import { existsSync } from 'node:fs';
import { onExit } from './processes.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the dashboard targets cannot run here, if they cannot. */
export function chromiumMissing(executable = CHROMIUM): string | undefined {
  return existsSync(executable)
    ? undefined
    : `chromium is not installed at ${executable} (Debian: apt-get install chromium)`;
}

/** The page's `/admin/*` requests since it opened (a refresh is four of them). */
export interface PollCount {
  answered: number;
  failed: number;
}

export interface Watcher {
  /** The browser's root process: its tree (zygote, renderer, GPU…) is the watcher's CPU. */
  pid: number;
  polls(): PollCount;
  close(): Promise<void>;
}

/** Long enough for a cold Chromium on a loaded two-core machine. */
const OPEN_TIMEOUT_MS = 30_000;

/**
 * Opens `url` (the admin listener's `/`) in a new headless Chromium and returns once the page
 * has drawn its first refresh; from then on it polls on its own.
 */
export async function watchDashboard(url: string): Promise<Watcher> {
  const { chromium } = await import('playwright-core');
  // launchServer, not launch: it hands out the browser's process, whose tree is measured.
  const server = await chromium.launchServer({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox'],
    timeout: OPEN_TIMEOUT_MS,
  });
  const proc = server.process();
  // Killed with the bench however it ends (the playwright server would otherwise be orphaned).
  onExit(() => proc.kill('SIGKILL'));
  try {
    const browser = await chromium.connect(server.wsEndpoint(), { timeout: OPEN_TIMEOUT_MS });
    const page = await browser.newPage();
    const count: PollCount = { answered: 0, failed: 0 };
    const isPoll = (address: string) => new URL(address).pathname.startsWith('/admin/');
    page.on('response', (res) => {
      if (isPoll(res.url())) count[res.ok() ? 'answered' : 'failed']++;
    });
    page.on('requestfailed', (req) => {
      if (isPoll(req.url())) count.failed++;
    });
    await page.goto(url, { timeout: OPEN_TIMEOUT_MS });
    // The tables show once the first refresh succeeded.
    await page.locator('#main').waitFor({ state: 'visible', timeout: OPEN_TIMEOUT_MS });
    return {
      pid: proc.pid as number,
      polls: () => ({ ...count }),
      close: () => server.close(),
    };
  } catch (error) {
    await server.close();
    throw new Error(`dashboard page at ${url} did not open: ${(error as Error).message}`, { cause: error });
  }
}
