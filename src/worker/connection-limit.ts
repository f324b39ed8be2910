import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/*
 * `server.max_connections`, per worker. Node's own `server.maxConnections` destroys a
 * connection beyond it on accept, which a client sees as a reset with no reason given. Here a
 * connection beyond the limit is still accepted and marked: its first request is answered
 * with a JSON 503 (`Connection: close`), so the client learns why, at the cost of parsing one
 * request head. Only the connections let in are counted.
 */

const OVER = Symbol('portico.overConnectionLimit');
type Marked = Socket & { [OVER]?: true };

interface Limit {
  max: number;
  open: number;
}

const LIMITS = new WeakMap<Server, Limit>();

/** Applies `max` (0 = unlimited) to `server`'s new connections; call again on a reload. */
export function limitConnections(server: Server, max: number): void {
  let limit = LIMITS.get(server);
  // Never limited: not even a listener. Once limited, every connection is counted, so a
  // reload that changes the limit sees the connections already open.
  if (limit === undefined && max === 0) return;
  if (limit === undefined) {
    const created: Limit = { max, open: 0 };
    const onClose = () => {
      created.open--;
    };
    // A TLS server's requests come on the TLS socket, not the TCP one it wraps (issue 15).
    const event = 'setSecureContext' in server ? 'secureConnection' : 'connection';
    server.on(event, (socket: Marked) => {
      if (created.max !== 0 && created.open >= created.max) {
        socket[OVER] = true;
        return;
      }
      created.open++;
      socket.once('close', onClose);
    });
    LIMITS.set(server, created);
    limit = created;
  }
  limit.max = max;
}

/** Whether `socket` came in beyond `server.max_connections`. */
export function overConnectionLimit(socket: Socket): boolean {
  return (socket as Marked)[OVER] === true;
}
