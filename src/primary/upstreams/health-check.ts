import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { HealthCheckPlan, UpstreamTlsPlan } from '../../shared/plan/types.js';
import { type EndpointView, endpointId } from '../../shared/upstream-messages.js';
import { upstreamTlsOptions, upstreamTlsReason, type UpstreamTlsReason } from '../../shared/upstream-tls.js';

/*
 * One active health check: `GET health_check.path` on one endpoint, on a fresh connection
 * (a kept-alive socket would hide that new connections fail), bounded by `timeout`.
 */

/** What one check saw: `detail` in words (`status 500`, `connection refused`). */
export interface CheckResult {
  pass: boolean;
  detail: string;
}

/**
 * Runs one check; never rejects. `tls`: the upstream's TLS settings, the workers' own (issue
 * 15), so a check passes only where traffic would. Injected in unit tests of the registry.
 */
export type Probe = (
  endpoint: EndpointView,
  check: HealthCheckPlan,
  tls: UpstreamTlsPlan,
) => Promise<CheckResult>;

const ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS certificate not trusted (self-signed)',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS certificate not trusted (self-signed)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate not trusted',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not name the host',
};

/** TLS failures without a line above, in words (the code follows, for the exact cause). */
const TLS_REASONS: Record<UpstreamTlsReason, string> = {
  unknown_ca: 'TLS certificate not trusted',
  name_mismatch: 'TLS certificate does not name the host',
  expired: 'TLS certificate expired or not yet valid',
  bad_certificate: 'TLS certificate invalid',
  handshake_refused: 'TLS handshake refused',
};

function failureDetail(err: NodeJS.ErrnoException): string {
  const known = ERRORS[err.code ?? ''];
  if (known !== undefined) return known;
  const tls = upstreamTlsReason(err);
  if (tls !== undefined) return `${TLS_REASONS[tls]} (${err.code})`;
  return err.code ?? err.message;
}

const seconds = (ms: number) => `${ms / 1000} s`;

export function passes(status: number, check: HealthCheckPlan): boolean {
  return check.expectStatus.some(([low, high]) => status >= low && status <= high);
}

export const probe: Probe = (endpoint, check, tls) =>
  new Promise((resolve) => {
    const secure = endpoint.protocol === 'https:';
    // The endpoint is an address of the target: ask it as the target, as the workers do.
    const name = endpoint.servername ?? endpoint.host;
    const defaultPort = endpoint.port === (secure ? 443 : 80);
    const host = defaultPort ? (name.includes(':') ? `[${name}]` : name) : endpointId(name, endpoint.port);
    let done = false;
    const finish = (result: CheckResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const req = (secure ? httpsRequest : httpRequest)(
      {
        host: endpoint.host,
        port: endpoint.port,
        path: check.path,
        method: 'GET',
        agent: false,
        headers: { host, 'user-agent': 'portico-health-check', connection: 'close' },
        // A fresh connection per check (every `interval`), so the options are made here.
        ...(secure ? upstreamTlsOptions(tls, endpoint.servername) : {}),
      },
      (res) => {
        // The status decides; the body is not needed.
        const status = res.statusCode ?? 0;
        res.resume();
        finish({ pass: passes(status, check), detail: `status ${status}` });
      },
    );
    const timer = setTimeout(
      () => finish({ pass: false, detail: `no answer within ${seconds(check.timeoutMs)}` }),
      check.timeoutMs,
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish({ pass: false, detail: failureDetail(err) });
    });
    req.end();
  });
