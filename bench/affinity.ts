/*
 * Applies a core map (core-map.ts) with Linux `taskset` (util-linux): processes the bench
 * spawns start under `taskset -c LIST`, so their threads and children (gateway workers,
 * nginx workers) inherit the CPUs from the first instruction; processes started by helpers
 * (redis-server) and the bench process itself are pinned by PID with every thread (`-a`).
 * Cpus_allowed_list in /proc/<pid>/status is what the kernel applies: the report records it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { processTree } from './processes.js';
import {
  formatCpuList,
  type Layout,
  orderBySiblings,
  parseCpuList,
  planLayout,
  type Role,
  ROLES,
} from './core-map.js';

/** The taskset binary, or undefined when util-linux is missing. */
export function findTaskset(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin'];
  return dirs
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, 'taskset'))
    .find((file) => existsSync(file));
}

/** `Cpus_allowed_list` of a process (or thread: `pid/task/tid`), or undefined once it is gone. */
export function allowedCpus(pid: number | string): string | undefined {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** The CPU ids this process may run on, hyperthreads of one core next to each other. */
export function availableCpus(): number[] {
  return orderBySiblings(parseCpuList(allowedCpus('self') ?? '0'), (cpu) => {
    try {
      return parseCpuList(
        readFileSync(`/sys/devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`, 'utf8'),
      );
    } catch {
      return []; // no topology (a container hiding /sys): every CPU its own core
    }
  });
}

/** Where each role runs, and how to put a process there. */
export class Placement {
  constructor(
    readonly layout: Layout,
    private readonly taskset: string | undefined,
  ) {}

  /** The plan for `--cpus` (undefined: the CPUs this process may use). */
  static plan(cores: number | undefined): { placement: Placement; notice?: string } {
    const available = availableCpus();
    const layout = planLayout(cores ?? available.length, available);
    const taskset = layout.pinned ? findTaskset() : undefined;
    if (layout.pinned && taskset === undefined) {
      // Nothing can be pinned: every role shares every core, and the report says so.
      const shared: Layout = {
        ...layout,
        kind: 'shared',
        cpus: Object.fromEntries(ROLES.map((role) => [role, available])) as Layout['cpus'],
        pinned: false,
        clientThreads: 1,
      };
      return {
        placement: new Placement(shared, undefined),
        notice: 'taskset (util-linux) not found: every process shares every core',
      };
    }
    return {
      placement: new Placement(layout, taskset),
      ...(layout.folded
        ? {
            notice:
              `--cpus ${layout.cores}: planned for more cores than the ${available.length} available, ` +
              'folded onto them; this run tests the layout, its figures measure nothing',
          }
        : {}),
    };
  }

  /** The CPUs of `role` if processes are pinned, else undefined (no taskset anywhere). */
  cpusOf(role: Role): number[] | undefined {
    return this.layout.pinned ? this.layout.cpus[role] : undefined;
  }

  /** Pins a running process and all its threads to `role`'s CPUs (no-op when not pinned). */
  pin(pid: number, role: Role): void {
    const cpus = this.cpusOf(role);
    if (cpus === undefined || this.taskset === undefined) return;
    const result = spawnSync(this.taskset, ['-a', '-p', '-c', formatCpuList(cpus), String(pid)], {
      encoding: 'utf8',
      timeout: 5_000,
    });
    if (result.status !== 0) throw new Error(`taskset -p ${pid} failed: ${result.stderr.trim()}`);
  }
}

/** `command args…` run under `taskset -c cpus` (unchanged when `cpus` is undefined). */
export function pinnedCommand(
  command: string,
  args: string[],
  cpus: readonly number[] | undefined,
): [string, string[]] {
  if (cpus === undefined) return [command, args];
  const taskset = findTaskset();
  if (taskset === undefined) throw new Error('taskset (util-linux) not found');
  return [taskset, ['-c', formatCpuList(cpus), command, ...args]];
}

/** The distinct Cpus_allowed_list values seen on each role's processes (and their children). */
export class Affinities {
  private readonly seen = new Map<Role, Set<string>>();

  record(role: Role, roots: readonly number[]): void {
    const lists = this.seen.get(role) ?? new Set<string>();
    this.seen.set(role, lists);
    for (const pid of roots.flatMap(processTree)) {
      const list = allowedCpus(pid);
      if (list !== undefined) lists.add(list);
    }
  }

  lists(): Partial<Record<Role, string[]>> {
    return Object.fromEntries([...this.seen].map(([role, lists]) => [role, [...lists].sort()]));
  }
}
