import type { ReloadOutcome } from '../reload.js';

/**
 * The reload history the `portico_config_*` metrics report: kept by the primary whether or
 * not metrics are on (it is the primary's own state, and a refused reload must be
 * scrapable either way), and read by the registry only when scraped.
 */
export class ReloadRecord {
  readonly counts: Record<ReloadOutcome['result'], number> = { success: 0, failure: 0, unchanged: 0 };
  /** False after a refused reload, until the next one that is not. */
  lastSuccessful = true;
  /** Unix ms the config in force was applied (the start, or the last successful reload). */
  lastSuccessAt: number;

  constructor(
    /** The hash of the config in force. */
    public hash: string,
    startedAt = Date.now(),
  ) {
    this.lastSuccessAt = startedAt;
  }

  record({ result, hash, at }: ReloadOutcome): void {
    this.counts[result]++;
    // Unchanged content is the config in force: the file on disk is fine again.
    this.lastSuccessful = result !== 'failure';
    if (result !== 'success') return;
    this.lastSuccessAt = Date.parse(at);
    this.hash = hash;
  }
}
