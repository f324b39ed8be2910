/**
 * Tells a crash loop from bad luck: `limit` worker deaths within `windowMs` while no worker
 * has stayed up for `windowMs` means the workers cannot run (a broken entry file, a missing
 * dependency, no memory), and respawning them forever would only hide it from the process
 * supervisor. One worker that stays up proves the instance can serve, so its slot-mates keep
 * being respawned (with backoff).
 */
export class CrashLoopDetector {
  readonly #deaths: number[] = [];

  constructor(
    readonly limit = 5,
    readonly windowMs = 60_000,
  ) {}

  /**
   * Records a death at `now` of a worker that lived `livedMs`, while the longest-running
   * surviving worker has been up `survivorUpMs` (0 if none). True: give up.
   */
  died(now: number, livedMs: number, survivorUpMs: number): boolean {
    if (livedMs >= this.windowMs) {
      this.#deaths.length = 0;
      return false;
    }
    this.#deaths.push(now);
    while ((this.#deaths[0] as number) <= now - this.windowMs) this.#deaths.shift();
    return this.#deaths.length >= this.limit && survivorUpMs < this.windowMs;
  }
}
