/*
 * A small HTTP/2 load generator on node:http2 (issue 15's `portico-bare-h2`): `connections`
 * streams kept in flight, each sending its next request as soon as the previous one ends,
 * multiplexed over one TLS session per STREAMS_PER_SESSION streams (10 sessions for the
 * bench's 50), so a gateway's workers each get sessions to serve. Certificates are verified
 * against the bench's CA. h2load would be faster but is rarely installed; this client's own
 * CPU shows in the report's client column like autocannon's.
 */
import { type ClientHttp2Session, connect } from 'node:http2';
import type { ClientSpec, RawRun } from './load-client.js';
import { Samples } from './latency.js';

export const STREAMS_PER_SESSION = 5;
/** A stream still open this long after the run's end is counted as an error. */
const GRACE_MS = 5_000;

function open(url: URL, ca: string | undefined): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(url.origin, ca === undefined ? {} : { ca });
    session.once('connect', () => {
      session.off('error', reject);
      session.on('error', () => {}); // counted per stream
      resolve(session);
    });
    session.once('error', reject);
  });
}

export async function h2Run(spec: ClientSpec): Promise<RawRun> {
  const targets = spec.urls.map((u) => new URL(u));
  const sessionCount = Math.max(1, Math.ceil(spec.connections / STREAMS_PER_SESSION));
  const sessions = await Promise.all(
    Array.from({ length: sessionCount }, (_, i) => open(targets[i % targets.length] as URL, spec.ca)),
  );
  const latencies = new Samples();
  let total = 0;
  let non2xx = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + spec.duration * 1000;

  const one = (session: ClientHttp2Session, path: string) =>
    new Promise<boolean>((resolve) => {
      const sentAt = performance.now();
      let status = 0;
      let over = false; // an error after the end must not count the stream twice
      const stream = session.request({ ':path': path, ...spec.headers });
      stream.once('response', (headers) => (status = Number(headers[':status'])));
      stream.resume();
      stream.once('end', () => {
        if (over) return;
        over = true;
        latencies.add(performance.now() - sentAt);
        total++;
        if (status < 200 || status > 299) non2xx++;
        resolve(true);
      });
      stream.once('error', () => {
        if (over) return;
        over = true;
        errors++;
        resolve(false);
      });
      stream.end();
    });

  const loop = async (i: number) => {
    const session = sessions[i % sessionCount] as ClientHttp2Session;
    const path = (targets[(i % sessionCount) % targets.length] as URL).pathname;
    // A dead session ends its streams' loops (one error each), not a busy loop of errors.
    while (performance.now() < deadline && !session.destroyed && !session.closed) await one(session, path);
  };
  const grace = setTimeout(
    () => {
      for (const s of sessions) s.destroy(new Error('streams still open after the run'));
    },
    spec.duration * 1000 + GRACE_MS,
  );
  await Promise.all(Array.from({ length: spec.connections }, (_, i) => loop(i)));
  clearTimeout(grace);
  const durationS = (performance.now() - started) / 1000;
  // A destroyed session (the grace timer, a dead connection) has closed already.
  const live = sessions.filter((s) => !s.destroyed);
  await Promise.all(live.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return { total, durationS, non2xx, errors, latencies: latencies.raw() };
}
