import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ClusterStore } from '../../src/worker/middleware/ratelimit/cluster-store.js';

const HOST = fileURLToPath(new URL('../fixtures/embedded-store-host.js', import.meta.url));

/**
 * The embedded store as a worker sees it: a ClusterStore talking over real IPC to a child
 * process that hosts the primary's half (test/fixtures/embedded-store-host.ts).
 */
export async function startEmbeddedStore(): Promise<{ store: ClusterStore; close(): Promise<void> }> {
  const child = fork(HOST, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await new Promise((resolve) => child.once('spawn', resolve));
  const store = new ClusterStore(child, 2_000);
  return {
    store,
    close: async () => {
      await store.close();
      child.kill();
    },
  };
}
