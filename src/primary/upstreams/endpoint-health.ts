import type { HealthCheckPlan, OutlierPlan } from '../../shared/plan/types.js';
import type { EndpointState, EndpointView, FailureKind } from '../../shared/upstream-messages.js';

/*
 * How one endpoint is doing, from two sources: active checks (thresholds as Envoy applies
 * them: the first check decides, then `healthy_threshold` passes or `unhealthy_threshold`
 * failures in a row flip it) and ejections decided from the workers' outlier reports. Pure
 * state: the registry owns timers and I/O and calls in with the time.
 */

const FAILURES: Record<FailureKind, string> = {
  connect_failure: 'connect failures',
  reset: 'connection resets',
  timeout: 'timeouts',
  '5xx': '5xx answers',
};

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export class EndpointHealth {
  /** The active checks' verdict; null before the first (or with no checks). */
  #verdict: boolean | null = null;
  #passes = 0;
  #failures = 0;
  #checkReason = 'not checked yet';
  /** Ejections of this endpoint so far: each lasts longer. */
  ejections = 0;
  /** When the ejection in force ends; null when none is. */
  ejectedUntil: number | null = null;
  #ejectReason = '';
  /** The ejection time is over but, with active checks, a check must pass first. */
  awaitingCheck = false;
  /** A check is running (at most one per endpoint). */
  checking = false;
  /** The next check, and the end of the ejection in force (the registry's timers). */
  checkTimer: unknown = undefined;
  ejectTimer: unknown = undefined;

  constructor(
    readonly view: EndpointView,
    private readonly check: HealthCheckPlan | null,
  ) {
    this.#apply(view.since);
  }

  /** Ejected now, or still waiting for the check that ends an ejection. */
  get ejected(): boolean {
    return this.ejectedUntil !== null || this.awaitingCheck;
  }

  /** A check result; returns whether the view changed. */
  checked(pass: boolean, detail: string, now: number): boolean {
    const check = this.check;
    if (check === null) return false;
    if (pass) {
      this.#passes++;
      this.#failures = 0;
      if (this.#verdict !== true && (this.#verdict === null || this.#passes >= check.healthyThreshold)) {
        this.#verdict = true;
        this.#checkReason = '';
      }
      this.awaitingCheck = false;
    } else {
      this.#failures++;
      this.#passes = 0;
      if (this.#verdict !== false && (this.#verdict === null || this.#failures >= check.unhealthyThreshold)) {
        this.#verdict = false;
        this.#checkReason = `${plural(this.#failures, 'failed check')}: ${detail}`;
        // Unhealthy rules from here: it comes back after healthy_threshold passes.
        this.awaitingCheck = false;
      }
    }
    return this.#apply(now);
  }

  /** Ejects it for this episode; returns how long. */
  eject(reason: FailureKind, outlier: OutlierPlan, now: number): number {
    this.ejections++;
    const ms = Math.min(outlier.baseEjectionMs * this.ejections, outlier.maxEjectionMs);
    this.ejectedUntil = now + ms;
    this.#ejectReason = `ejected for ${seconds(ms)} after ${outlier.consecutiveFailures} ${FAILURES[reason]} in a row`;
    this.#apply(now);
    return ms;
  }

  /** The ejection time is over; returns whether the view changed. */
  ejectionOver(now: number): boolean {
    this.ejectedUntil = null;
    this.awaitingCheck = this.check !== null && this.#verdict === true;
    if (this.awaitingCheck) this.#ejectReason = 'ejection over, waiting for a passing check';
    return this.#apply(now);
  }

  #apply(now: number): boolean {
    let state: EndpointState;
    let reason: string;
    if (this.ejected) {
      state = 'ejected';
      reason = this.#ejectReason;
    } else if (this.check === null) {
      state = 'healthy';
      reason = '';
    } else {
      state = this.#verdict === null ? 'unknown' : this.#verdict ? 'healthy' : 'unhealthy';
      reason = this.#checkReason;
    }
    const view = this.view;
    if (view.state === state && view.reason === reason) return false;
    if (view.state !== state) view.since = now;
    view.state = state;
    view.reason = reason;
    return true;
  }
}
