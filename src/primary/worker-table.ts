import { readFile } from 'node:fs/promises';

/** One worker slot as the admin API shows it. */
export interface WorkerView {
  slot: number;
  pid: number | null;
  started_at: string | null;
  /** Times this slot's worker died and was replaced. */
  restarts: number;
  /** Hash of the config the worker was started with; null while no worker holds the slot. */
  config_hash: string | null;
  listening: boolean;
  rss_bytes: number | null;
}

interface Slot {
  pid: number | null;
  startedAt: number | null;
  restarts: number;
  configHash: string | null;
  listening: boolean;
}

/**
 * What the primary knows about its workers, slot by slot: filled in by the supervisor as it
 * forks, hears `portico:ready` and sees exits; read by `/readyz` and `/admin/workers`.
 */
export class WorkerTable {
  readonly #slots: Slot[];
  #draining = false;

  constructor(
    count: number,
    /** Hash of the config in force; a worker counts as ready only when it runs this one. */
    public activeHash: string,
  ) {
    this.#slots = Array.from({ length: count }, () => ({
      pid: null,
      startedAt: null,
      restarts: 0,
      configHash: null,
      listening: false,
    }));
  }

  get count(): number {
    return this.#slots.length;
  }

  forked(slot: number, pid: number | undefined, configHash: string): void {
    const s = this.#slots[slot] as Slot;
    if (s.startedAt !== null) s.restarts++;
    Object.assign(s, { pid: pid ?? null, startedAt: Date.now(), configHash, listening: false });
  }

  /** The worker in `slot` was handed the plan of `configHash` (at start, or after a reload). */
  planSent(slot: number, configHash: string): void {
    (this.#slots[slot] as Slot).configHash = configHash;
  }

  /** A reload switched every live worker to `configHash`. */
  activate(configHash: string): void {
    this.activeHash = configHash;
    for (const s of this.#slots) if (s.pid !== null) s.configHash = configHash;
  }

  listening(slot: number): void {
    (this.#slots[slot] as Slot).listening = true;
  }

  exited(slot: number): void {
    Object.assign(this.#slots[slot] as Slot, { pid: null, configHash: null, listening: false });
  }

  /** SIGTERM/SIGINT: from now on the instance is not ready, whatever the workers do. */
  drain(): void {
    this.#draining = true;
  }

  /** `ready`, or why not: orchestrators stop sending traffic while it is not. */
  state(): 'ready' | 'starting' | 'draining' {
    if (this.#draining) return 'draining';
    const ready = this.#slots.every((s) => s.listening && s.configHash === this.activeHash);
    return ready ? 'ready' : 'starting';
  }

  readyCount(): number {
    return this.#slots.filter((s) => s.listening && s.configHash === this.activeHash).length;
  }

  async view(): Promise<WorkerView[]> {
    return Promise.all(
      this.#slots.map(async (s, slot) => ({
        slot,
        pid: s.pid,
        started_at: s.startedAt === null ? null : new Date(s.startedAt).toISOString(),
        restarts: s.restarts,
        config_hash: s.configHash,
        listening: s.listening,
        rss_bytes: s.pid === null ? null : await residentBytes(s.pid),
      })),
    );
  }
}

/**
 * A process's resident set from `/proc/<pid>/status` (Linux), or null elsewhere or when it
 * has just exited. A few hundred bytes per worker, so a listing stays cheap however often
 * it is polled; asking workers over IPC would wait on a busy event loop.
 */
async function residentBytes(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}
