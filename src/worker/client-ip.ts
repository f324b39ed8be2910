import type { BlockList } from 'node:net';
import { isIPv4 } from 'node:net';

/** `::ffff:10.0.0.1` (IPv4 on a dual-stack socket) is the IPv4 peer `10.0.0.1`. */
export function canonicalIp(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * An `X-Forwarded-For` entry as a bare address: some proxies write `ip:port` or
 * `[v6]:port`, and a port must not make one client look like many (its own rate-limit bucket
 * per source port). A bare IPv6 address has several colons and is left as it is.
 */
export function forwardedAddress(entry: string): string {
  const hop = entry.trim();
  if (hop.charCodeAt(0) === 91 /* [ */) {
    const end = hop.indexOf(']');
    return canonicalIp(end === -1 ? hop : hop.slice(1, end));
  }
  const colon = hop.indexOf(':');
  return colon !== -1 && hop.indexOf(':', colon + 1) === -1 ? hop.slice(0, colon) : canonicalIp(hop);
}

export function isTrusted(list: BlockList | null, address: string): boolean {
  if (list === null) return false;
  return list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
}

/**
 * The client's address. `X-Forwarded-For` is only believed when the socket peer is a
 * trusted proxy; then the right-most entry that is not itself a trusted proxy is the
 * client (entries further left were written by parties we cannot vouch for).
 */
export function clientIpOf(
  peer: string,
  forwardedFor: string | undefined,
  trusted: BlockList | null,
): string {
  if (forwardedFor === undefined || !isTrusted(trusted, peer)) return peer;
  const hops = forwardedFor.split(',');
  let leftmost = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = forwardedAddress(hops[i] as string);
    if (hop === '') continue;
    if (!isTrusted(trusted, hop)) return hop;
    leftmost = hop;
  }
  return leftmost;
}
