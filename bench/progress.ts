/*
 * Progress on stderr while a run takes minutes: one line per step with the time left,
 * estimated from the plan and corrected by how fast the steps so far actually went.
 */

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export class Progress {
  private readonly estimates: number[];
  private next = 0;
  private readonly startedAt = performance.now();

  /** The plan: the estimated seconds of each step, in order. */
  constructor(estimates: number[]) {
    this.estimates = estimates;
  }

  private left(): number {
    const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);
    const planned = sum(this.estimates.slice(0, this.next));
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const pace = planned > 0 ? elapsed / planned : 1;
    return sum(this.estimates.slice(this.next)) * pace;
  }

  /** Time left for the whole plan, as "4 min 10 s". */
  eta(): string {
    return duration(this.left());
  }

  /** Announces the next step. */
  step(label: string): void {
    process.stderr.write(`${label} (~${duration(this.left())} left)\n`);
    this.next++;
  }
}
