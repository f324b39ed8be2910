import { isPrimaryToWorker, type WorkerToPrimary } from '../shared/messages.js';
import type { Plan } from '../shared/plan/types.js';

/**
 * Asks the primary for the plan and waits for it. Asked, not awaited from fork: the entry
 * file may take its time to reach `start()`, and a message that arrives before anyone
 * listens is lost. A shutdown before the plan ends the worker at once. A `portico:plan`
 * whose shape is wrong rejects (the worker dies and the
 * primary sees it), rather than running on something half understood.
 */
export function receivePlan(): Promise<Plan> {
  return new Promise<Plan>((resolve, reject) => {
    const done = () => {
      process.off('message', onMessage);
      process.off('disconnect', onGone);
    };
    const onGone = () => {
      done();
      reject(new Error('the primary went away before sending the plan'));
    };
    const onMessage = (message: unknown) => {
      if (isPrimaryToWorker(message)) {
        // The instance stops before this worker built anything: nothing to drain.
        if (message.type === 'portico:shutdown' || message.type === 'portico:replaced') process.exit(0);
        if (message.type !== 'portico:plan') return;
        done();
        resolve(message.plan);
      } else if ((message as { type?: unknown } | null)?.type === 'portico:plan') {
        done();
        reject(new Error('the primary sent a malformed plan'));
      }
    };
    process.on('message', onMessage);
    process.once('disconnect', onGone);
    const request: WorkerToPrimary = { type: 'portico:plan-request' };
    if (!process.send) {
      reject(new Error('a worker needs the IPC channel to its primary'));
      return;
    }
    process.send(request);
  });
}
