import { OperatorError } from './shared/errors.js';
import { formatAddress } from './shared/startup-error.js';

/** Where a running instance's admin API is, and the token it wants (if any). */
export interface AdminTarget {
  url: string;
  token: string | undefined;
}

/** One reason the instance refused the new config, as `POST /admin/reload` lists it. */
interface ReloadProblem {
  path: string | null;
  message: string;
  line: number | null;
  column: number | null;
}

type ReloadAnswer =
  { result: 'success' | 'unchanged'; hash: string } | { result: 'failure'; errors: ReloadProblem[] };

/** The bound on one reload: workers get 10 s to build the new tree, plus reading and planning. */
const RELOAD_TIMEOUT_MS = 30_000;

/**
 * The admin listener a config describes. An all-interfaces bind is reached on loopback, where
 * the instance listens too.
 */
export function adminTargetOf(admin: {
  host: string;
  port: number;
  token?: string | undefined;
}): AdminTarget {
  const host = admin.host === '0.0.0.0' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host;
  return { url: `http://${formatAddress(host, admin.port)}`, token: admin.token };
}

/**
 * `portico reload`: asks a running instance to reload its config file (`POST /admin/reload`)
 * and says what came of it. The instance reads the file itself; this command sends nothing
 * but the request, so it reloads exactly what a SIGHUP would.
 */
export async function requestReload(target: AdminTarget): Promise<string> {
  const url = new URL('/admin/reload', target.url);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: target.token === undefined ? {} : { authorization: `Bearer ${target.token}` },
      signal: AbortSignal.timeout(RELOAD_TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new OperatorError(
      'PORTICO_ERR_ADMIN_UNREACHABLE',
      `cannot reach the admin API at ${target.url}: ${cause}`,
      {
        cause: err,
      },
    );
  }
  if (response.status === 401)
    throw new OperatorError(
      'PORTICO_ERR_ADMIN_UNREACHABLE',
      `the admin API at ${target.url} wants admin.token: set it in the config or PORTICO_ADMIN_TOKEN`,
    );
  const answer = (await response.json().catch(() => undefined)) as ReloadAnswer | undefined;
  if (answer?.result === 'success' || answer?.result === 'unchanged')
    return `reload: ${answer.result} (config ${answer.hash.slice(0, 12)})`;
  if (answer?.result === 'failure') {
    const lines = answer.errors.map((problem) => {
      const at = problem.line === null ? '' : `${problem.line}:${problem.column ?? 1}: `;
      return `portico: reload refused: ${at}${problem.path === null ? '' : `${problem.path}: `}${problem.message}`;
    });
    throw new OperatorError('PORTICO_ERR_RELOAD', 'the new config was refused; the old one still runs', {
      lines: [...lines, 'portico: the config in force is unchanged'],
    });
  }
  const said = (answer as { error?: unknown } | undefined)?.error;
  throw new OperatorError(
    'PORTICO_ERR_ADMIN_UNREACHABLE',
    `unexpected answer from the admin API at ${target.url}: HTTP ${response.status}${typeof said === 'string' ? ` (${said})` : ''}`,
  );
}
