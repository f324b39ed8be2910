/*
 * Failed DNS resolutions per upstream target, read by the primary's metrics at each scrape
 * (`portico_upstream_dns_failures_total`). A series exists, from 0, while a discovery of that
 * target runs: a reload that keeps the upstream keeps its count; one that drops it ends it.
 */

interface Tally {
  upstream: string;
  target: string;
  count: number;
  /** Discoveries of this target that run (a changed upstream briefly has two). */
  users: number;
}

const tallies = new Map<string, Tally>();
const keyOf = (upstream: string, target: string) => `${upstream}\u0000${target}`;

/** A discovery of `target` starts: its series exists from now on. Returns the counter and release. */
export function dnsFailureCounter(upstream: string, target: string): { failed(): void; release(): void } {
  const key = keyOf(upstream, target);
  let tally = tallies.get(key);
  if (tally === undefined) {
    tally = { upstream, target, count: 0, users: 0 };
    tallies.set(key, tally);
  }
  tally.users++;
  const own = tally;
  let released = false;
  return {
    failed: () => {
      own.count++;
    },
    release: () => {
      if (released) return;
      released = true;
      if (--own.users === 0) tallies.delete(key);
    },
  };
}

/** Every running target's failures so far. */
export function dnsFailures(): Iterable<Readonly<Tally>> {
  return tallies.values();
}
