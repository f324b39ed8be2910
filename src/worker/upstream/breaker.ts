import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import { GatewayError } from '../../shared/errors.js';
import type { BreakerPlan } from '../../shared/plan/types.js';

/*
 * An upstream's `circuit_breaker` in one worker: the concurrency limits (`max_requests`,
 * `max_pending`) and the error-ratio breaker. The pool asks `admit()` before it picks an
 * endpoint and tells it how each exchange went; nothing here is per endpoint.
 *
 * Breaker state is per worker (each worker sees its own share of the traffic and trips on
 * it); trips are counted cluster-wide, the state gauge is merged with max (open anywhere
 * shows open). A verdict is taken once per exchange: a 5xx answer head fails it, a 1xx–4xx
 * one passes it, and an exchange that ends with no answer fails it when the upstream was at
 * fault (connect failure, reset, timeout) and gives no verdict when the client went away.
 */

export const CLOSED = 0;
export const HALF_OPEN = 1;
export const OPEN = 2;
export type BreakerState = typeof CLOSED | typeof HALF_OPEN | typeof OPEN;
const STATE_NAMES = ['closed', 'half-open', 'open'] as const;

/** A trip in a row doubles `open_for`, up to this (or `open_for` itself, if longer). */
export const MAX_OPEN_MS = 300_000;
/** The window is kept as this many buckets: no allocation per exchange, 10 % granularity. */
const BUCKETS = 10;

export type OverflowLimit = 'max_requests' | 'max_pending';

export interface BreakerInstruments {
  overflow: Counter<'upstream' | 'limit'>;
  trips: Counter<'upstream'>;
  state: Gauge<'upstream'>;
}

const OVERFLOW = new GatewayError('PORTICO_ERR_UPSTREAM_OVERFLOW', { headers: { 'retry-after': '1' } });
/** Open-circuit answers by their `Retry-After` seconds, made once each. */
const OPEN_ANSWERS: GatewayError[] = [];
function openAnswer(seconds: number): GatewayError {
  let answer = OPEN_ANSWERS[seconds];
  if (answer === undefined) {
    answer = new GatewayError('PORTICO_ERR_CIRCUIT_OPEN', { headers: { 'retry-after': String(seconds) } });
    OPEN_ANSWERS[seconds] = answer;
  }
  return answer;
}

/** The live breakers of each registry's state gauge: the gauge reads them when collected. */
const LIVE = new WeakMap<Gauge<'upstream'>, Set<CircuitBreaker>>();

/** Sets the state gauge from the live breakers (several pools of a name during a reload: the worst). */
export function collectBreakerStates(gauge: Gauge<'upstream'>): void {
  gauge.reset();
  const worst = new Map<string, number>();
  for (const breaker of LIVE.get(gauge) ?? []) {
    worst.set(breaker.upstream, Math.max(worst.get(breaker.upstream) ?? 0, breaker.state));
  }
  for (const [upstream, state] of worst) gauge.set({ upstream }, state);
}

export class CircuitBreaker {
  state: BreakerState = CLOSED;
  /** Exchanges started and not ended. */
  active = 0;
  /** Started exchanges whose connection is not established yet (counted only with `max_pending`). */
  pending = 0;
  /** Times it opened (for the admin view). */
  trips = 0;
  readonly upstream: string;
  readonly #plan: BreakerPlan;
  readonly #logger: Logger;
  readonly #instruments: BreakerInstruments | undefined;
  readonly #maxRequests: number;
  readonly #maxPending: number;
  readonly #errorRatio: number;
  /** Anything that may refuse: when false, `admit` is one branch. */
  #guarded: boolean;
  readonly #bucketMs: number;
  /** Per bucket: its number (time / bucketMs), exchanges judged, failures. */
  readonly #epochs = new Float64Array(BUCKETS).fill(-BUCKETS);
  readonly #totals = new Float64Array(BUCKETS);
  readonly #failures = new Float64Array(BUCKETS);
  /** Trips in a row (reset when it closes): `open_for` × 2^(n-1). */
  #streak = 0;
  #halfOpenAt = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Half-open: probes started and not ended, and probes that passed. */
  #probes = 0;
  #passed = 0;
  readonly #overflowRequests: Counter.Internal | undefined;
  readonly #overflowPending: Counter.Internal | undefined;
  readonly #tripCount: Counter.Internal | undefined;

  constructor(upstream: string, plan: BreakerPlan, logger: Logger, instruments?: BreakerInstruments) {
    this.upstream = upstream;
    this.#plan = plan;
    this.#logger = logger;
    this.#instruments = instruments;
    this.#maxRequests = plan.maxRequests === 0 ? Infinity : plan.maxRequests;
    this.#maxPending = plan.maxPending === 0 ? Infinity : plan.maxPending;
    this.#errorRatio = plan.errorRatio;
    this.#guarded = plan.maxRequests > 0 || plan.maxPending > 0;
    this.#bucketMs = plan.windowMs / BUCKETS;
    if (instruments !== undefined) {
      // Series exist from the start (at zero) for what is configured.
      if (plan.maxRequests > 0)
        this.#overflowRequests = instruments.overflow.labels(upstream, 'max_requests');
      if (plan.maxPending > 0) this.#overflowPending = instruments.overflow.labels(upstream, 'max_pending');
      if (plan.errorRatio > 0) this.#tripCount = instruments.trips.labels(upstream);
      this.#overflowRequests?.inc(0);
      this.#overflowPending?.inc(0);
      this.#tripCount?.inc(0);
      let live = LIVE.get(instruments.state);
      if (live === undefined) {
        live = new Set();
        LIVE.set(instruments.state, live);
      }
      live.add(this);
    }
  }

  /** Whether connections still being established must be counted (`max_pending` is set). */
  get countsPending(): boolean {
    return this.#maxPending !== Infinity;
  }

  /** The refusal for a request about to go upstream, or undefined: let it through. */
  admit(): GatewayError | undefined {
    if (!this.#guarded) return undefined;
    if (this.state !== CLOSED) {
      if (this.state === OPEN) {
        return openAnswer(Math.max(1, Math.ceil((this.#halfOpenAt - Date.now()) / 1000)));
      }
      if (this.#probes + this.#passed >= this.#plan.halfOpenRequests) return openAnswer(1);
    }
    if (this.active >= this.#maxRequests) {
      this.#overflowRequests?.inc();
      return OVERFLOW;
    }
    if (this.pending >= this.#maxPending) {
      this.#overflowPending?.inc();
      return OVERFLOW;
    }
    return undefined;
  }

  /** An admitted request went to an endpoint. */
  started(): void {
    this.active++;
    if (this.state === HALF_OPEN) this.#probes++;
  }

  /** An exchange is over (after its verdict, if it had one). */
  ended(): void {
    this.active--;
    if (this.state === HALF_OPEN && this.#probes > 0) this.#probes--;
  }

  /** The verdict on one exchange. */
  judged(failed: boolean): void {
    if (this.#errorRatio === 0) return;
    if (this.state === CLOSED) this.#closedVerdict(failed);
    else if (this.state === HALF_OPEN) {
      if (failed) this.#open('a half-open probe failed');
      else if (++this.#passed >= this.#plan.halfOpenRequests) this.#close();
    }
    // Open: verdicts of exchanges started before the trip say nothing new.
  }

  /** Seconds until an open breaker lets probes through (0 when not open); for the admin view. */
  retryAfter(now = Date.now()): number {
    return this.state === OPEN ? Math.max(1, Math.ceil((this.#halfOpenAt - now) / 1000)) : 0;
  }

  close(): void {
    clearTimeout(this.#timer);
    if (this.#instruments !== undefined) LIVE.get(this.#instruments.state)?.delete(this);
  }

  #closedVerdict(failed: boolean): void {
    const now = Date.now();
    const index = Math.floor(now / this.#bucketMs);
    const slot = index % BUCKETS;
    if (this.#epochs[slot] !== index) {
      this.#epochs[slot] = index;
      this.#totals[slot] = 0;
      this.#failures[slot] = 0;
    }
    (this.#totals[slot] as number)++;
    if (!failed) return;
    (this.#failures[slot] as number)++;
    let total = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (index - (this.#epochs[i] as number) >= BUCKETS) continue;
      total += this.#totals[i] as number;
      failures += this.#failures[i] as number;
    }
    if (total >= this.#plan.minRequests && failures >= this.#errorRatio * total) {
      this.#open(`${failures} of the last ${total} exchanges failed`);
    }
  }

  #open(why: string): void {
    this.#streak++;
    const openFor = Math.min(
      this.#plan.openForMs * 2 ** (this.#streak - 1),
      Math.max(MAX_OPEN_MS, this.#plan.openForMs),
    );
    this.#halfOpenAt = Date.now() + openFor;
    this.#epochs.fill(-BUCKETS);
    this.trips++;
    this.#tripCount?.inc();
    this.#set(OPEN, { reason: why, open_for_ms: openFor, trips_in_a_row: this.#streak });
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#halfOpen(), openFor);
    this.#timer.unref();
  }

  #halfOpen(): void {
    this.#probes = 0;
    this.#passed = 0;
    this.#set(HALF_OPEN, { probes: this.#plan.halfOpenRequests });
  }

  #close(): void {
    this.#streak = 0;
    this.#set(CLOSED, {});
  }

  #set(state: BreakerState, fields: Record<string, unknown>): void {
    this.state = state;
    this.#guarded = state !== CLOSED || this.#maxRequests !== Infinity || this.#maxPending !== Infinity;
    const line = { upstream: this.upstream, state: STATE_NAMES[state], ...fields };
    if (state === OPEN) this.#logger.warn(line, 'circuit breaker opened');
    else this.#logger.info(line, state === CLOSED ? 'circuit breaker closed' : 'circuit breaker half-open');
  }
}

/*
 * `max_pending`: with keep-alive agents and no socket limit nothing queues inside an agent;
 * a request waits only while a new connection to its endpoint is being made (a slow or
 * overloaded upstream that does not accept). It is pending from the moment it is handed to
 * the agent until it has a connected socket (a reused one at once), or until it ends.
 */
const PENDING = Symbol('portico.pending');
type PendingRequest = ClientRequest & { [PENDING]?: CircuitBreaker | undefined };
type PendingSocket = Socket & { [PENDING]?: PendingRequest | undefined };

/** Counts `proxyReq` as pending in `breaker` until it is connected or over. */
export function countPending(breaker: CircuitBreaker, proxyReq: ClientRequest): void {
  breaker.pending++;
  (proxyReq as PendingRequest)[PENDING] = breaker;
  proxyReq.on('socket', onPendingSocket);
  proxyReq.on('close', onPendingClose);
}

function settle(req: PendingRequest): void {
  const breaker = req[PENDING];
  if (breaker === undefined) return;
  req[PENDING] = undefined;
  breaker.pending--;
}

function onPendingSocket(this: PendingRequest, socket: PendingSocket): void {
  if (!socket.connecting) {
    settle(this);
    return;
  }
  // A connecting socket serves this one request until it connects ('connect' fires once).
  socket[PENDING] = this;
  socket.on('connect', onPendingConnect);
}

function onPendingConnect(this: PendingSocket): void {
  const req = this[PENDING];
  this[PENDING] = undefined;
  if (req !== undefined) settle(req);
}

function onPendingClose(this: PendingRequest): void {
  settle(this);
}
