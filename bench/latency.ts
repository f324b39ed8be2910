/*
 * Latency samples kept exactly (a Float64Array of milliseconds), so percentiles keep the
 * microseconds that autocannon's histogram drops: autocannon 9 records into an HDR
 * histogram whose lowest discernible value is 1 (ms), and its p50/p99 come out as whole
 * milliseconds (a 60 µs loopback answer reads as p50 0, p99 1).
 */

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p97_5: number;
  p99: number;
  max: number;
}

export class Samples {
  private values = new Float64Array(1 << 16);
  private length = 0;

  add(ms: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = ms;
  }

  /** The samples so far (a copy: it may be transferred to another thread). */
  raw(): Float64Array {
    return this.values.slice(0, this.length);
  }

  /** Adds every sample of another run (a load-generator thread's). */
  addAll(values: Float64Array): void {
    for (const v of values) this.add(v);
  }

  /** Nearest-rank percentiles, rounded to the microsecond. */
  summary(): LatencySummary {
    const sorted = this.values.slice(0, this.length).sort();
    const n = sorted.length;
    const at = (p: number) =>
      n === 0 ? 0 : round(sorted[Math.max(0, Math.ceil((p / 100) * n) - 1)] as number);
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: n,
      mean: n === 0 ? 0 : round(sum / n),
      p50: at(50),
      p97_5: at(97.5),
      p99: at(99),
      max: n === 0 ? 0 : round(sorted[n - 1] as number),
    };
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
