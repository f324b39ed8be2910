/*
 * `fast-gateway` (npm) proxying /bench to the bench upstream, configured as its README shows
 * with defaults otherwise (fast-proxy-lite with a keep-alive agent). WORKERS > 1 runs that
 * many node:cluster workers sharing the port, as Portico's cluster does; ready once all
 * listen. Env: UPSTREAM_PORT, WORKERS. Prints `ready <port>`.
 */
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import gateway from 'fast-gateway';

const workers = Number(process.env.WORKERS ?? 1);
const port = Number(process.env.BENCH_PORT ?? 0);

async function serve(on: number): Promise<number> {
  const server = await gateway({
    routes: [
      {
        prefix: '/bench',
        prefixRewrite: '/bench', // forward the path unchanged
        pathRegex: '', // exactly /bench (the default '/*' would want /bench/…)
        target: `http://127.0.0.1:${process.env.UPSTREAM_PORT}`,
      },
    ],
  }).start(on, '127.0.0.1');
  return (server.address() as AddressInfo).port;
}

// Go with the bench (its IPC channel closes when it exits, however it exits); cluster workers
// already exit when their primary's channel closes.
if (cluster.isPrimary) process.on('disconnect', () => process.exit(0));

if (workers === 1) {
  console.log(`ready ${await serve(port)}`);
} else if (cluster.isPrimary) {
  // Workers need a fixed port to share: the primary picks a free one first.
  const { createServer } = await import('node:net');
  const chosen = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`ready ${chosen}`);
  });
  for (let i = 0; i < workers; i++) cluster.fork({ BENCH_PORT: String(chosen), WORKERS: String(workers) });
} else {
  await serve(port);
}
