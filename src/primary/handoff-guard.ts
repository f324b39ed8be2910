import type { Worker } from 'node:cluster';

/*
 * node:cluster's round-robin scheduling (the default outside Windows) accepts each connection
 * in the primary and passes it to a worker over the IPC channel, keeping its own copy of the
 * socket until the worker acknowledges it. A worker that dies with a connection in flight
 * never acknowledges, and Node never closes its copy: the client waits forever with its
 * request unread. Node has no hook for this, so we watch the handoff on the worker's channel
 * (`{cmd: 'NODE_CLUSTER', act: 'newconn', seq}` out, `{cmd: 'NODE_CLUSTER', ack: seq}` back;
 * the protocol has not changed since Node 0.12) and close what is still unacknowledged once
 * the channel is gone. Should the protocol change, nothing matches and Node's own behaviour
 * stays as it was.
 */

interface ClusterMessage {
  cmd?: unknown;
  act?: unknown;
  seq?: unknown;
  ack?: unknown;
}

interface Closable {
  close(): void;
}

type Send = (message: unknown, handle?: unknown, ...rest: unknown[]) => boolean;

const isCluster = (message: unknown): message is ClusterMessage =>
  typeof message === 'object' && message !== null && (message as ClusterMessage).cmd === 'NODE_CLUSTER';

/** Closes the connections handed to `worker` that it had not taken when it died. */
export function guardConnectionHandoffs(worker: Worker): void {
  const child = worker.process as unknown as {
    send: Send;
    on(event: string, fn: (m: unknown) => void): void;
  };
  const inFlight = new Map<number, Closable>();
  const send = child.send;
  child.send = function sendTracked(this: unknown, message, handle, ...rest) {
    if (handle && isCluster(message) && message.act === 'newconn' && typeof message.seq === 'number')
      inFlight.set(message.seq, handle as Closable);
    return send.call(this, message, handle, ...rest);
  };
  child.on('internalMessage', (message) => {
    if (isCluster(message) && typeof message.ack === 'number') inFlight.delete(message.ack);
  });
  // 'close' comes once the process has exited and its channel has been read to the end, so
  // every acknowledgement it sent has been seen. ('disconnect' may never come: Node holds it
  // back until the handle in flight is acknowledged.)
  worker.process.once('close', () => {
    for (const handle of inFlight.values()) handle.close();
    inFlight.clear();
  });
}
