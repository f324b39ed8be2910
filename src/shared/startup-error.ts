import { OperatorError } from './errors.js';

/**
 * The instance cannot run (a port it cannot listen on, workers that keep dying). Its message is
 * one line for stderr, after `portico: `; whoever catches it exits non-zero without a stack
 * trace, so a supervisor (systemd, Kubernetes) sees the failure instead of a respawn loop.
 */
export class StartupError extends OperatorError {
  constructor(
    code: 'PORTICO_ERR_LISTEN' | 'PORTICO_ERR_CRASH_LOOP',
    message: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
  }
}

const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EAFNOSUPPORT: 'address family not supported',
};

/** `host:port`, with an IPv6 host in brackets. */
export function formatAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * `cannot listen on 0.0.0.0:8080: address already in use`; `setting` names the config key or
 * environment variable to change, when it is not the obvious one.
 */
export function cannotListen(host: string, port: number, code: string | undefined, setting?: string): string {
  const where =
    setting === undefined ? formatAddress(host, port) : `${formatAddress(host, port)} (${setting})`;
  return `cannot listen on ${where}: ${(code && REASONS[code]) ?? code ?? 'unknown error'}`;
}
