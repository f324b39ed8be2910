/**
 * Respawn delay per worker slot. A worker that lived long enough (`stableMs`) is respawned
 * at once; each quick death in a row doubles the delay up to `maxMs`, so a worker that
 * crashes at start-up costs a bounded amount of CPU instead of a spinning core.
 */
export class RespawnBackoff {
  readonly #failures = new Map<number, number>();

  constructor(
    private readonly baseMs = 100,
    private readonly maxMs = 10_000,
    private readonly stableMs = 5_000,
  ) {}

  next(slot: number, livedMs: number): number {
    if (livedMs >= this.stableMs) {
      this.#failures.set(slot, 0);
      return 0;
    }
    const failures = (this.#failures.get(slot) ?? 0) + 1;
    this.#failures.set(slot, failures);
    return Math.min(this.maxMs, this.baseMs * 2 ** (failures - 1));
  }
}
