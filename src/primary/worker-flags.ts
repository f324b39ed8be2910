/**
 * Young-generation size (MB per semi-space) given to workers. The request path allocates
 * short-lived objects (spans waiting for their export batch, log records, promises) that
 * outlive V8's default 16 MB scavenges under load and get promoted to the old generation:
 * measured on the full middleware chain, 32 MB cut the worker's CPU per request by ~10 %
 * (64 MB by ~20 %, but past the 120 MB-per-worker memory budget). See bench/RESULTS.md.
 */
export const WORKER_SEMI_SPACE_MB = 32;

const SEMI_SPACE_FLAG = /^--max[-_]semi[-_]space[-_]size\b/;

/**
 * The Node flags workers are forked with: the primary's own, plus a larger young
 * generation unless the operator already chose one (on the command line or in NODE_OPTIONS,
 * which workers inherit).
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions = ''): string[] {
  const chosen = [...execArgv, ...nodeOptions.split(/\s+/)].some((flag) => SEMI_SPACE_FLAG.test(flag));
  return chosen ? [...execArgv] : [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}
