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
  /** The config a rolling replacement is bringing in: its workers count as ready too. */
  #incoming: string | null = null;

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

  /**
   * A rolling replacement took `slot` over with a worker that listens, running `configHash`
   * (a slot past the end is added). Not a restart: nothing died.
   */
  replaced(slot: number, pid: number | undefined, startedAt: number, configHash: string): void {
    const s: Slot = { pid: pid ?? null, startedAt, restarts: 0, configHash, listening: true };
    const old = this.#slots[slot];
    if (old === undefined) this.#slots[slot] = s;
    else Object.assign(old, { ...s, restarts: old.restarts });
  }

  /** Slots from `count` on were drained by a rolling replacement: they are gone. */
  truncate(count: number): void {
    this.#slots.length = Math.min(count, this.#slots.length);
  }

  /** A rolling replacement toward `configHash` begins (null: it ended). */
  incoming(configHash: string | null): void {
    this.#incoming = configHash;
  }

  /** A reload switched every live worker to `configHash`. */
  activate(configHash: string): void {
    this.activeHash = configHash;
    this.#incoming = null;
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
    return this.#slots.every((s) => this.#ready(s)) ? 'ready' : 'starting';
  }

  readyCount(): number {
    return this.#slots.filter((s) => this.#ready(s)).length;
  }

  // Mid-replacement both configs serve: the instance stays in rotation while it rolls.
  #ready(s: Slot): boolean {
    return s.listening && (s.configHash === this.activeHash || s.configHash === this.#incoming);
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
