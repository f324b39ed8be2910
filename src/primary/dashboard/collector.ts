import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import {
  type DashboardSnapshot,
  isWorkerToPrimary,
  type PrimaryToWorker,
  type RecentError,
} from '../../shared/messages.js';
import { SAMPLE_SECONDS, TrafficSeries } from './traffic.js';

/*
 * The dashboard's data, kept by the primary: every SAMPLE_SECONDS it asks each ready worker
 * for its per-route counters, its recent 5xx and its event-loop delay (one small IPC message
 * each way per worker; nothing per request). Runs whether or not anyone watches, so the
 * 15-minute sparklines have history when the page opens.
 */

const RECENT_ERRORS = 100;
/** A worker busy for longer than this answers into the next sample instead. */
const ANSWER_WAIT_MS = 2_000;

/** What a worker last reported, by pid (the worker table's key for the page). */
export interface WorkerReport {
  loop_delay_ms: number | null;
  status: DashboardSnapshot['status'];
}

export class DashboardCollector {
  readonly traffic = new TrafficSeries();
  /** Newest last; at most RECENT_ERRORS. */
  readonly #errors: RecentError[] = [];
  readonly #reports = new Map<number, WorkerReport>();
  readonly #ready = new Set<number>();
  #waiting: { pending: Set<number>; done(): void } | undefined;
  #nextId = 0;
  readonly #timer: NodeJS.Timeout;
  readonly #onMessage: (worker: Worker, message: unknown) => void;
  readonly #onExit: (worker: Worker) => void;

  constructor(
    /** The paths of the routes in force that count traffic (`metrics` middleware on). */
    private readonly routed: () => ReadonlySet<string>,
    private readonly logger: Logger,
    intervalMs = SAMPLE_SECONDS * 1000,
  ) {
    this.#onMessage = (worker, message) => {
      if (!isWorkerToPrimary(message)) return;
      if (message.type === 'portico:ready') this.#ready.add(worker.id);
      else if (message.type === 'portico:dashboard-snapshot') this.#snapshot(worker, message);
    };
    this.#onExit = (worker) => {
      this.#ready.delete(worker.id);
      this.traffic.forget(worker.id);
      if (worker.process.pid !== undefined) this.#reports.delete(worker.process.pid);
      if (this.#waiting?.pending.delete(worker.id) && this.#waiting.pending.size === 0) this.#waiting.done();
    };
    cluster.on('message', this.#onMessage);
    cluster.on('exit', this.#onExit);
    this.#timer = setInterval(() => void this.#pull(), intervalMs);
    this.#timer.unref();
  }

  /** The last gateway-generated 5xx, newest first. */
  errors(): RecentError[] {
    return this.#errors.slice().reverse();
  }

  report(pid: number | null): WorkerReport | undefined {
    return pid === null ? undefined : this.#reports.get(pid);
  }

  /** Every worker's value of status key `key` (absent ones left out). */
  statusValues(key: string): DashboardSnapshot['status'][string][] {
    return [...this.#reports.values()].flatMap((r) => (key in r.status ? [r.status[key] ?? null] : []));
  }

  close(): void {
    clearInterval(this.#timer);
    cluster.off('message', this.#onMessage);
    cluster.off('exit', this.#onExit);
    this.#waiting?.done();
  }

  #snapshot(worker: Worker, snapshot: DashboardSnapshot): void {
    this.traffic.ingest(worker.id, snapshot.bounds, snapshot.routes);
    for (const error of snapshot.errors.slice(-RECENT_ERRORS)) {
      if (this.#errors.length >= RECENT_ERRORS) this.#errors.shift();
      this.#errors.push(error);
    }
    if (worker.process.pid !== undefined)
      this.#reports.set(worker.process.pid, {
        loop_delay_ms: snapshot.loop_delay_ms,
        status: snapshot.status,
      });
    if (this.#waiting?.pending.delete(worker.id) && this.#waiting.pending.size === 0) this.#waiting.done();
  }

  async #pull(): Promise<void> {
    if (this.#waiting) return; // the previous pull still waits (a stuck worker): skip a beat
    const message: PrimaryToWorker = { type: 'portico:dashboard-collect', id: this.#nextId++ };
    const pending = new Set<number>();
    for (const id of this.#ready) {
      const worker = cluster.workers?.[id];
      if (!worker?.isConnected()) continue;
      try {
        worker.send(message);
        pending.add(id);
      } catch {
        // The channel closed in between; its exit is on the way.
      }
    }
    if (pending.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.logger.debug({ workers: [...pending] }, 'dashboard: workers answered late');
          done();
        }, ANSWER_WAIT_MS);
        const done = () => {
          clearTimeout(timer);
          this.#waiting = undefined;
          resolve();
        };
        this.#waiting = { pending, done };
      });
    }
    this.traffic.tick(this.routed());
  }
}
