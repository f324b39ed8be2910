import { isPrimaryToWorker } from '../shared/messages.js';

/** Why a worker is asked to stop; `replaced`: a reload took its slot (the instance goes on). */
export type StopHandler = (reason: string, replaced: boolean) => void;

/**
 * Every request to stop a worker (the primary's `portico:shutdown` and `portico:replaced`, its
 * own SIGTERM/SIGINT, the channel to the primary closing), heard from before the plan is asked
 * for until the worker exits. One listener for the whole life of the worker, because Node emits
 * the messages of one channel read in a row before any promise continuation runs: a shutdown
 * that arrived together with the plan would reach nobody if the plan's listener were removed
 * and the server's installed after an `await`, and the worker would live on until the primary's
 * backstop killed it. Until a handler is set, the first request is kept.
 */
export class StopRequests {
  #asked: { reason: string; replaced: boolean } | undefined;
  #handler: StopHandler | undefined;

  install(): this {
    process.on('message', (message) => {
      if (!isPrimaryToWorker(message)) return;
      if (message.type === 'portico:shutdown') this.#ask('primary asked', false);
      else if (message.type === 'portico:replaced') this.#ask('replaced by a reload', true);
    });
    process.on('SIGTERM', () => this.#ask('SIGTERM', false));
    process.on('SIGINT', () => this.#ask('SIGINT', false));
    // A terminal hang-up reaches the whole process group; the primary reloads, workers ignore it.
    process.on('SIGHUP', () => {});
    // The IPC channel closes when the primary dies: do not linger as an orphan.
    process.on('disconnect', () => this.#ask('primary gone', false));
    return this;
  }

  /** Hands every request from now on to `handler`, and at once the one that came before, if any. */
  onStop(handler: StopHandler): void {
    this.#handler = handler;
    if (this.#asked !== undefined) handler(this.#asked.reason, this.#asked.replaced);
  }

  #ask(reason: string, replaced: boolean): void {
    if (this.#handler !== undefined) this.#handler(reason, replaced);
    else this.#asked ??= { reason, replaced };
  }
}
