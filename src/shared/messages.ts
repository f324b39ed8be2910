/*
 * Messages between the primary and its workers over the cluster IPC channel. A typed union,
 * checked where it arrives: anything else on the channel is ignored, never trusted.
 */

export type PrimaryToWorker = { type: 'portico:shutdown' };

export type WorkerToPrimary = { type: 'portico:ready'; port: number };

export function isPrimaryToWorker(message: unknown): message is PrimaryToWorker {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'portico:shutdown'
  );
}

export function isWorkerToPrimary(message: unknown): message is WorkerToPrimary {
  if (typeof message !== 'object' || message === null) return false;
  const m = message as { type?: unknown; port?: unknown };
  return m.type === 'portico:ready' && typeof m.port === 'number';
}
