import { isIPv6 } from 'node:net';

/**
 * The `/bits` network of an IPv6 address, e.g. `2001:db8:1:2::/64` for `2001:db8:1:2:a::1`.
 * One subscriber usually holds a whole /64, so keying IPv6 clients by full address would
 * let one client rotate through 2^64 buckets. Anything that is not an IPv6 address
 * (IPv4, garbage a proxy wrote) is returned unchanged.
 */
export function ipv6Network(address: string, bits: number): string {
  if (bits >= 128 || !address.includes(':') || !isIPv6(address)) return address;
  const groups = expand(address);
  const out: string[] = [];
  for (let i = 0; i < 8 && i * 16 < bits; i++) {
    const keep = Math.min(16, bits - i * 16);
    const mask = (0xffff << (16 - keep)) & 0xffff;
    out.push(((groups[i] as number) & mask).toString(16));
  }
  return `${out.join(':')}${out.length < 8 ? '::' : ''}/${bits}`;
}

/** Eight 16-bit groups; handles `::` and a trailing dotted IPv4 (`::ffff:1.2.3.4`). */
function expand(address: string): number[] {
  const zone = address.indexOf('%');
  const text = zone === -1 ? address : address.slice(0, zone);
  const split = (part: string): number[] => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else groups.push(parseInt(group, 16));
    }
    return groups;
  };
  const gap = text.indexOf('::');
  if (gap === -1) return split(text);
  const head = split(text.slice(0, gap));
  const tail = split(text.slice(gap + 2));
  return [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}
