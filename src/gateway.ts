import { isUtf8 } from 'node:buffer';
import cluster from 'node:cluster';
import { readFile } from 'node:fs/promises';
import { runPrimary } from './primary/supervisor.js';
import { ConfigError } from './shared/config/errors.js';
import { exitWith, OperatorError } from './shared/errors.js';
import type { MiddlewareCatalog } from './shared/config/load.js';
import type { Config } from './shared/config/schema.js';
import { createLogger } from './shared/logger.js';
import { MiddlewareRegistry } from './worker/middleware/registry.js';
import type { VerifierFactory } from './worker/middleware/auth/verifier.js';
import type { Middleware } from './worker/middleware/types.js';
import type { Plan } from './shared/plan/types.js';
import { receivePlan } from './worker/plan-handover.js';
import { EndpointDirectory } from './worker/upstream/directory.js';
import { StopRequests } from './worker/stop-requests.js';
import { runWorker } from './worker/worker.js';

/**
 * Where `start()` hands its gateway when an entry file is loaded only to learn what it
 * registers (entry-loader.ts). A global symbol, not module state: the entry may import
 * another copy of Portico than the CLI's.
 */
export const ENTRY_CAPTURE = Symbol.for('portico.entryCapture');
/**
 * Validates config text. The parser (yaml, zod and the schema) is loaded only where this
 * runs, in the primary: workers get the plan.
 */
async function parseConfig(text: string, name: string, catalog: MiddlewareCatalog): Promise<Config> {
  const { parseConfigText } = await import('./shared/config/load.js');
  return parseConfigText(text, name, catalog);
}

/** Validates config text and resolves it into the plan the workers run. */
async function planConfig(
  text: string,
  name: string,
  catalog: MiddlewareCatalog,
): Promise<{ config: Config; plan: Plan; tlsFiles: string[] }> {
  const [{ configDirOf, loadConfigText }, { buildPlan }] = await Promise.all([
    import('./shared/config/load.js'),
    import('./primary/plan/build.js'),
  ]);
  const loaded = loadConfigText(text, name, catalog);
  return {
    config: loaded.config,
    plan: buildPlan(loaded, name, configDirOf(name)),
    tlsFiles: loaded.tlsFiles,
  };
}

/** A config file path, or the config itself as a plain object (same keys as the YAML). */
export type ConfigSource = string | Record<string, unknown>;

/**
 * A gateway before it starts: register middleware, then `start()`. The same entry file runs in
 * the primary and in every worker (node:cluster re-executes it), so registrations made before
 * `start()` exist in every worker.
 *
 * @example
 * import { createGateway, contextOf } from 'portico';
 * await createGateway('./config.yaml')
 *   .register('hello', (next) => async function hello(req, res) {
 *     res.setHeader('x-hello', contextOf(req).params.id ?? 'world');
 *     await next(req, res);
 *   })
 *   .start();
 */
export class Gateway {
  readonly #registry = new MiddlewareRegistry();
  readonly #source: ConfigSource;

  constructor(source: ConfigSource) {
    this.#source = source;
  }

  /** Adds a named middleware that routes can list in `middleware:`. */
  register(name: string, middleware: Middleware): this {
    this.#registry.register(name, middleware);
    return this;
  }

  /**
   * Adds an `auth.type` verifier, selected per route by `auth.type: <type>`; its settings come
   * from the same `auth` section (custom keys under `auth.options`).
   */
  registerVerifier(type: string, factory: VerifierFactory): this {
    this.#registry.registerVerifier(type, factory);
    return this;
  }

  /**
   * Validates the config (or `source` instead, e.g. another file) against the registered
   * middleware and verifiers, without starting anything; throws `ConfigError`.
   *
   * @example
   * await createGateway('./config.yaml').register('hello', hello).check(); // throws or returns the config
   */
  async check(source?: ConfigSource): Promise<Config> {
    const { text, name } = await (source === undefined ? this.#read() : readSource(source));
    return parseConfig(text, name, this.#registry);
  }

  /**
   * Starts the primary (which forks the workers) or, inside a worker, the server. In the
   * primary it resolves once every worker has drained after SIGTERM/SIGINT. An invalid config
   * prints one line per problem to stderr and exits 1; so does an instance that cannot run
   * (a port it cannot listen on, workers that keep dying), with one line.
   */
  async start(): Promise<void> {
    // Loaded by `portico check|token --entry`: hand over the registrations, start nothing, and
    // never resolve, so the entry's code after `await start()` does not run either.
    const capture = (globalThis as Record<symbol, unknown>)[ENTRY_CAPTURE];
    if (typeof capture === 'function') {
      (capture as (gateway: Gateway) => void)(this);
      return new Promise<never>(() => {});
    }
    if (cluster.isWorker) {
      await this.#startWorker();
      return;
    }
    const { text, name } = await this.#read();
    let planned: { config: Config; plan: Plan; tlsFiles: string[] };
    try {
      planned = await planConfig(text, name, this.#registry);
    } catch (err) {
      if (!(err instanceof OperatorError)) throw err;
      exitWith(err);
    }
    const { config, plan, tlsFiles } = planned;
    const logger = createLogger(plan.logging, { role: 'primary', pid: process.pid });
    try {
      // Workers ask for the plan over IPC: they neither re-read the file (which may have
      // changed since) nor load the parser, and no environment size limit applies.
      await runPrimary({
        config,
        plan,
        tlsFiles,
        logger,
        // A reload reads and plans the source exactly as the start did.
        load: async () => {
          const next = await this.#read();
          return planConfig(next.text, next.name, this.#registry);
        },
      });
    } catch (err) {
      if (!(err instanceof OperatorError)) throw err;
      exitWith(err);
    }
  }

  async #startWorker(): Promise<void> {
    // Before the plan is asked for: the primary sends the endpoint lists just ahead of it.
    const directory = new EndpointDirectory().install();
    const stops = new StopRequests().install();
    const plan = await receivePlan();
    const slot = process.env.PORTICO_WORKER_SLOT ?? '?';
    await runWorker(
      plan,
      this.#registry,
      createLogger(plan.logging, { role: 'worker', worker: slot, pid: process.pid }),
      directory,
      stops,
    );
  }

  #read(): Promise<{ text: string; name: string }> {
    return readSource(this.#source);
  }
}

async function readSource(source: ConfigSource): Promise<{ text: string; name: string }> {
  if (typeof source !== 'string') return { text: JSON.stringify(source), name: '<inline config>' };
  return { text: await readConfigFile(source), name: source };
}

/** The file's text, or a `ConfigError` saying in words why there is none (`cause`: the fs error). */
async function readConfigFile(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'config file not found'
        : code === 'EISDIR'
          ? 'is a directory, not a config file'
          : code === 'EACCES'
            ? 'cannot read config: permission denied'
            : `cannot read config: ${(err as Error).message}`;
    throw new ConfigError([`${file}: ${reason}`], { cause: err, code: 'PORTICO_ERR_CONFIG_UNREADABLE' });
  }
  if (!isUtf8(bytes)) {
    // Decoding replaces the first bad byte with U+FFFD: report where that is.
    const before = bytes.toString('utf8').split('\uFFFD')[0] as string;
    const lines = before.split('\n');
    const at = `${lines.length}:${(lines.at(-1) as string).length + 1}`;
    throw new ConfigError([`${file}:${at}: the file is not UTF-8 text (save it as UTF-8)`], {
      code: 'PORTICO_ERR_CONFIG_UNREADABLE',
    });
  }
  return bytes.toString('utf8');
}

export function createGateway(source: ConfigSource): Gateway {
  return new Gateway(source);
}
