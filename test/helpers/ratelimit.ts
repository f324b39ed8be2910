import { Agent, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** One GET; `from` picks the local source address (127.0.0.x) so tests can be other peers. */
export function get(
  url: string,
  options: { headers?: OutgoingHttpHeaders; from?: string; agent?: Agent; timeoutMs?: number } = {},
): Promise<Answer> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        headers: options.headers,
        agent: options.agent ?? false,
        ...(options.from ? { localAddress: options.from } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - start }),
        );
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Parses `"name";r=1;t=2` / `"name";q=4;w=1` into its parameters. */
export function sfParams(field: string | string[] | undefined): Record<string, string> {
  const text = Array.isArray(field) ? field.join(',') : (field ?? '');
  const [item, ...params] = text.split(';');
  const out: Record<string, string> = { name: item?.trim() ?? '' };
  for (const p of params) {
    const [k, v] = p.split('=');
    if (k !== undefined && v !== undefined) out[k.trim()] = v.trim();
  }
  return out;
}

export function statusCounts(answers: readonly Answer[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
  return counts;
}
