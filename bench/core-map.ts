/*
 * Where the bench's processes run (issue 17). On a machine with at least 8 cores each role
 * gets its own cores, so the load generator's jitter and the upstream's, Redis's and the OTLP
 * endpoint's work never land on the gateway's cores; below 8 everything shares the cores as
 * before (the layout every RESULTS.md before issue 17 was measured with).
 *
 * The core map, in logical cores taken in order (N = cores planned for):
 *
 *   client    floor(N / 4)            the bench process: load-generator threads, fixed-rate client
 *   upstream  max(1, floor(N / 8))    the upstream (one process per core)
 *   redis     1                      redis-server (single-threaded)
 *   otlp      1                      the OTLP endpoint
 *   gateway   the rest                every target: Portico, node-raw, fast-gateway, nginx
 *
 *   8 cores: client 0-1, upstream 2, redis 3, otlp 4, gateway 5-7 (3)
 *  16 cores: client 0-3, upstream 4-5, redis 6, otlp 7, gateway 8-15 (8)
 *  32 cores: client 0-7, upstream 8-11, redis 12, otlp 13, gateway 14-31 (18)
 *
 * Logical cores are CPU ids in sibling order (orderBySiblings: the hyperthreads of one
 * physical core next to each other), so a role with an even count gets whole physical cores
 * and roles meet inside one physical core only where a count is odd (Redis and the OTLP
 * endpoint at 16 cores; the OTLP endpoint and one gateway core at 8).
 *
 * Pure: which CPU ids exist comes in as `available`; affinity.ts applies the map.
 */

export const ROLES = ['client', 'upstream', 'redis', 'otlp', 'gateway'] as const;
export type Role = (typeof ROLES)[number];

/** Below this many cores every role shares every core (as before issue 17). */
export const SEPARATE_FROM = 8;

export interface Layout {
  /** Cores planned for: `--cpus N`, else the CPUs this process may run on. */
  cores: number;
  /** `separate`: each role on its own cores; `shared`: every role on the same cores. */
  kind: 'separate' | 'shared';
  /** Real CPU ids each role runs on. */
  cpus: Record<Role, number[]>;
  /** Whether processes are pinned with taskset (false: shared over every CPU, nothing to pin). */
  pinned: boolean;
  /**
   * More cores planned than the machine has: logical core i runs on real CPU
   * available[floor(i × available / cores)]. Proves the plumbing on a small machine;
   * its figures measure nothing.
   */
  folded: boolean;
  /** Load-generator threads: one per client core when separate, else 1 (in the bench process). */
  clientThreads: number;
}

/** How many logical cores each role gets out of `cores` (≥ SEPARATE_FROM). */
export function roleCounts(cores: number): Record<Role, number> {
  const client = Math.floor(cores / 4);
  const upstream = Math.max(1, Math.floor(cores / 8));
  return { client, upstream, redis: 1, otlp: 1, gateway: cores - client - upstream - 2 };
}

/**
 * The layout for `cores` planned cores on a machine whose usable CPU ids are `available`
 * (in the order they should be handed out).
 */
export function planLayout(cores: number, available: readonly number[]): Layout {
  if (!Number.isInteger(cores) || cores < 1)
    throw new Error(`cores must be a positive integer, got ${cores}`);
  if (available.length === 0) throw new Error('no CPU available');
  const folded = cores > available.length;
  // Logical core i → a real CPU: itself when the machine has enough, else folded evenly.
  const real = (i: number) =>
    folded ? (available[Math.floor((i * available.length) / cores)] as number) : (available[i] as number);
  const span = (from: number, count: number) =>
    [...new Set(Array.from({ length: count }, (_, k) => real(from + k)))].sort((a, b) => a - b);
  if (cores < SEPARATE_FROM) {
    const all = span(0, cores);
    return {
      cores,
      kind: 'shared',
      cpus: Object.fromEntries(ROLES.map((role) => [role, all])) as Record<Role, number[]>,
      // Every CPU, as before: nothing to pin. Fewer (`--cpus` below the machine's): pinned to them.
      pinned: all.length < available.length,
      folded,
      clientThreads: 1,
    };
  }
  const counts = roleCounts(cores);
  const cpus = {} as Record<Role, number[]>;
  let next = 0;
  for (const role of ROLES) {
    cpus[role] = span(next, counts[role]);
    next += counts[role];
  }
  return { cores, kind: 'separate', cpus, pinned: true, folded, clientThreads: counts.client };
}

/** The gateway worker counts of the scaling table: 1, 2, 4, 8, those the gateway has cores for. */
export function scalingCounts(layout: Layout): number[] {
  const gatewayCores =
    layout.kind === 'separate' ? roleCounts(layout.cores).gateway : Math.max(1, layout.cores);
  return [1, 2, 4, 8].filter((n) => n <= gatewayCores);
}

/** How many workers "the cluster default" means in this layout: one per gateway core. */
export function clusterWorkers(layout: Layout): number {
  return layout.kind === 'separate' ? roleCounts(layout.cores).gateway : layout.cores;
}

/** `0-3,8,10-11`: the form of taskset -c and /proc/<pid>/status Cpus_allowed_list. */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The inverse of formatCpuList. */
export function parseCpuList(list: string): number[] {
  return list
    .trim()
    .split(',')
    .filter((part) => part !== '')
    .flatMap((part) => {
      const [from, to] = part.split('-').map(Number) as [number, number | undefined];
      return to === undefined ? [from] : Array.from({ length: to - from + 1 }, (_, k) => from + k);
    });
}

/**
 * `cpus` reordered so that hyperthreads of one physical core are adjacent: cores in the order
 * of their lowest CPU id, each followed by its siblings (`siblingsOf`: the CPU ids sharing its
 * core, as /sys/devices/system/cpu/cpuN/topology/thread_siblings_list lists them).
 */
export function orderBySiblings(
  cpus: readonly number[],
  siblingsOf: (cpu: number) => readonly number[],
): number[] {
  const usable = new Set(cpus);
  const ordered: number[] = [];
  const placed = new Set<number>();
  for (const cpu of [...cpus].sort((a, b) => a - b)) {
    if (placed.has(cpu)) continue;
    const core = [...new Set([cpu, ...siblingsOf(cpu)])].filter((c) => usable.has(c)).sort((a, b) => a - b);
    for (const c of core) {
      if (!placed.has(c)) {
        placed.add(c);
        ordered.push(c);
      }
    }
  }
  return ordered;
}
