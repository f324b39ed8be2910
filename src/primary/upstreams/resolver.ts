import { type LookupAddress, promises as dns, type SrvRecord } from 'node:dns';
import { isIP } from 'node:net';

/*
 * What discovery needs from DNS: a host's addresses and a service's SRV records, each with
 * how long the answer may be kept. Two implementations: the system's (c-ares with the servers
 * of /etc/resolv.conf, and the system lookup for names only it knows) and explicit servers
 * (`discovery.resolvers`). Both reject when a name has no usable answer (NXDOMAIN, no
 * records, no server reachable): discovery keeps the last good answer then.
 */

/** One address of a host; `ttl` in seconds, `null` when the source does not say. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
  ttl: number | null;
}

/** One SRV record. Node's resolver does not report SRV TTLs, so none is given here. */
export interface ResolvedService {
  host: string;
  port: number;
  priority: number;
  weight: number;
}

export interface Resolver {
  /** Every A and AAAA address of `host`; rejects when there is none. */
  resolveAddresses(host: string): Promise<ResolvedAddress[]>;
  /** The SRV records of `name` (`_service._proto.name`); rejects when there is none. */
  resolveService(name: string): Promise<ResolvedService[]>;
  /** Ends the queries in flight (they reject). */
  cancel(): void;
}

/**
 * A failed resolution: the resolver's code (`ENOTFOUND`, `ETIMEOUT`, …) and a message in
 * words. Not a PorticoError: it never reaches a client or ends a process; discovery logs it.
 */
export type ResolveError = Error & { code: string };

function resolveError(message: string, code: string, cause?: unknown): ResolveError {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code });
}

/** Each try waits this long, twice per server: a dead server costs seconds, not minutes. */
const QUERY_TIMEOUT_MS = 1_000;
const QUERY_TRIES = 2;

const LOCALHOST = /^(?:.+\.)?localhost\.?$/i;

/** Codes that mean "the name has no such record", as opposed to "no answer came". */
const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA']);

const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
};

function newCares(): dns.Resolver {
  return new dns.Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
}

/** A and AAAA through c-ares, in parallel; one family missing is fine, both missing is not. */
async function caresAddresses(cares: dns.Resolver, host: string): Promise<ResolvedAddress[]> {
  const [v4, v6] = await Promise.allSettled([
    cares.resolve4(host, { ttl: true }),
    cares.resolve6(host, { ttl: true }),
  ]);
  const found: ResolvedAddress[] = [];
  if (v4.status === 'fulfilled')
    for (const r of v4.value) found.push({ address: r.address, family: 4, ttl: r.ttl });
  if (v6.status === 'fulfilled')
    for (const r of v6.value) found.push({ address: r.address, family: 6, ttl: r.ttl });
  if (found.length > 0) return found;
  // Report the failure that says most: a transport error over "no such record".
  const reasons = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const worst = reasons.find((err) => !NO_RECORD.has(codeOf(err))) ?? reasons[0];
  const code = worst === undefined ? 'ENODATA' : codeOf(worst);
  throw resolveError(`${host}: ${describeCode(code)}`, code, worst);
}

async function caresService(cares: dns.Resolver, name: string): Promise<ResolvedService[]> {
  let records: SrvRecord[];
  try {
    records = await cares.resolveSrv(name);
  } catch (err) {
    const code = codeOf(err);
    throw resolveError(`${name}: ${describeCode(code)}`, code, err);
  }
  if (records.length === 0) throw resolveError(`${name}: ${describeCode('ENODATA')}`, 'ENODATA');
  return records.map((r) => ({ host: r.name, port: r.port, priority: r.priority, weight: r.weight }));
}

/** Explicit DNS servers (`discovery.resolvers`, `host:port`), asked directly. */
export function createServerResolver(servers: string[]): Resolver {
  const cares = newCares();
  cares.setServers(servers);
  return {
    resolveAddresses: (host) => caresAddresses(cares, host),
    resolveService: (name) => caresService(cares, name),
    cancel: () => cares.cancel(),
  };
}

export interface SystemResolverOptions {
  /** The c-ares resolver to ask first; default: one with the servers of /etc/resolv.conf. */
  cares?: dns.Resolver;
  /** The system lookup for names DNS does not know; default `dns.lookup` (getaddrinfo). */
  lookup?: (host: string, options: { all: true }) => Promise<LookupAddress[]>;
}

/**
 * The system's resolver: c-ares with the servers of /etc/resolv.conf (it gives TTLs), and
 * for a name it cannot resolve the system lookup (getaddrinfo: /etc/hosts, `localhost`,
 * nsswitch), whose answers carry no TTL. SRV names go to DNS only.
 */
export function createSystemResolver(options: SystemResolverOptions = {}): Resolver {
  const cares = options.cares ?? newCares();
  const lookup = options.lookup ?? ((host, opts) => dns.lookup(host, opts));
  const system = async (host: string): Promise<ResolvedAddress[]> => {
    const found = await lookup(host, { all: true });
    return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4, ttl: null }));
  };
  return {
    async resolveAddresses(host) {
      // RFC 6761: localhost names are never asked of DNS.
      if (LOCALHOST.test(host)) return system(host);
      try {
        return await caresAddresses(cares, host);
      } catch (err) {
        // Also when no DNS server answers: /etc/hosts names must keep working without DNS.
        let found: ResolvedAddress[];
        try {
          found = await system(host);
        } catch {
          throw err;
        }
        if (found.length === 0) throw err;
        return found;
      }
    },
    resolveService: (name) => caresService(cares, name),
    cancel: () => cares.cancel(),
  };
}

/** The resolver for a pool's `discovery.resolvers` setting (empty: the system's). */
export function resolverFor(servers: string[]): Resolver {
  return servers.length === 0 ? createSystemResolver() : createServerResolver(servers);
}

/** An SRV target name that is an IP literal stands for itself (some registries write them). */
export const isAddress = (host: string): boolean => isIP(host) !== 0;

function describeCode(code: string): string {
  switch (code) {
    case 'ENOTFOUND':
      return 'no such name (NXDOMAIN)';
    case 'ENODATA':
      return 'the name has no records of that type';
    case 'ETIMEOUT':
      return 'no DNS server answered in time';
    case 'ECONNREFUSED':
      return 'the DNS server refused the connection (not running?)';
    case 'ESERVFAIL':
      return 'the DNS server failed (SERVFAIL)';
    case 'EREFUSED':
      return 'the DNS server refused the query';
    case 'ECANCELLED':
      return 'cancelled';
    default:
      return `DNS error ${code}`;
  }
}
