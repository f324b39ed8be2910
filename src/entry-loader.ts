import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ENTRY_CAPTURE, type Gateway } from './gateway.js';
import { OperatorError } from './shared/errors.js';

/** Why an entry file could not be loaded for `--entry` (shown to the user as is). */
export class EntryError extends OperatorError {
  constructor(message: string, options?: ErrorOptions) {
    super('PORTICO_ERR_ENTRY', message, options);
  }
}

/**
 * Imports the user's entry file (`node my-gateway.js`'s file) to learn what it registers:
 * its `createGateway(…)…start()` call hands the gateway over instead of starting (see
 * `Gateway.start`). Code before `start()` runs as usual; code after it never does.
 */
export async function loadEntry(file: string): Promise<Gateway> {
  const globals = globalThis as Record<symbol, unknown>;
  let captured: (gateway: Gateway) => void = () => {};
  const started = new Promise<Gateway>((resolveGateway) => {
    captured = resolveGateway;
  });
  globals[ENTRY_CAPTURE] = (gateway: Gateway) => captured(gateway);
  const loaded = import(pathToFileURL(resolve(file)).href).then(
    () => {
      throw new EntryError(`--entry ${file}: the file ran to its end without calling start() on a gateway`);
    },
    (err: unknown) => {
      throw new EntryError(`--entry ${file}: cannot load it: ${(err as Error).message ?? String(err)}`, {
        cause: err,
      });
    },
  );
  // The capture stays installed: a later `start()` in the entry must not start either.
  return Promise.race([started, loaded]);
}
