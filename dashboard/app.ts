/*
 * The dashboard page: polls the admin API every POLL_MS and redraws its tables in place.
 * Plain DOM, no framework; the page reads only `/admin/*` of the listener that served it.
 * Text goes in with `textContent` (never as HTML): route paths and error codes are data.
 */

const POLL_MS = 2_000;
const TOKEN_KEY = 'portico-admin-token';

type Json = Record<string, unknown>;

interface Overview {
  instance: { pid: number; started_at: string; uptime_seconds: number; node: string };
  workers: {
    slot: number;
    pid: number | null;
    uptime_seconds: number | null;
    restarts: number;
    rss_bytes: number | null;
    event_loop_delay_ms: number | null;
  }[];
  config: {
    hash: string;
    source: string;
    loaded_at: string;
    last_reload: {
      at: string;
      result: string;
      errors: { path: string | null; message: string; line: number | null; column: number | null }[];
    } | null;
  };
  rate_limit: { store: string; deployment: string | null; reachable: boolean | null } & Json;
  tracing: { enabled: boolean; endpoint: string | null; export: string | null } & Json;
}

interface RouteRow {
  path: string;
  methods: string[] | null;
  target: string | null;
  upstream: string | null;
  middleware: string[];
  metrics: boolean;
  traffic: {
    requests_per_second: number;
    errors_4xx_per_second: number;
    errors_5xx_per_second: number;
    p50_ms: number | null;
    p99_ms: number | null;
    requests: number[];
    errors_5xx: number[];
  } | null;
}

interface Upstream {
  name: string;
  implicit: boolean;
  circuit_breaker: { state: string; retry_after: number; trips: number };
  retry: { retries: number; budget_exhausted: number; in_retry: number };
  endpoints: {
    id: string;
    state: string;
    reason: string;
    since: string;
    in_flight: number;
    weight: number;
  }[];
}

interface RecentError {
  time: string;
  route: string;
  method: string;
  status: number;
  code: string;
  request_id: string;
}

type Child = Node | string | number | null | undefined;

function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  for (const child of children)
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  return el;
}

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
}

const rows = (table: string) => byId<HTMLTableElement>(table).tBodies[0] as HTMLTableSectionElement;

function duration(seconds: number | null): string {
  if (seconds === null) return '–';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

const bytes = (n: number | null) => (n === null ? '–' : `${(n / 1048576).toFixed(0)} MiB`);
const ms = (n: number | null) => (n === null ? '–' : n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);
const rate = (n: number) => (n === 0 ? '0' : n < 10 ? n.toFixed(2) : n.toFixed(0));
const time = (iso: string) => new Date(iso).toLocaleTimeString();

function num(text: string, cls = ''): HTMLElement {
  return h('td', { class: `num ${cls}`.trim() }, text);
}

const SVG = 'http://www.w3.org/2000/svg';

/** Requests (and 5xx) per sample over the window, as two polylines scaled to the busiest sample. */
function sparkline(requests: number[], errors: number[]): SVGElement {
  const width = 180;
  const height = 24;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', '150');
  svg.setAttribute('height', '24');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'requests per 5 s over 15 minutes');
  // The whole window's baseline, so a young series reads as "recent", not as "all there is".
  const base = document.createElementNS(SVG, 'line');
  const edge = { x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5 };
  for (const [name, value] of Object.entries(edge)) base.setAttribute(name, String(value));
  base.setAttribute('class', 'base');
  svg.append(base);
  const peak = Math.max(1, ...requests);
  const line = (values: number[], cls: string) => {
    const poly = document.createElementNS(SVG, 'polyline');
    const offset = width - values.length; // newest at the right edge
    poly.setAttribute(
      'points',
      values.map((v, i) => `${offset + i},${(height - 1 - (v / peak) * (height - 2)).toFixed(1)}`).join(' '),
    );
    poly.setAttribute('class', cls);
    svg.append(poly);
  };
  line(requests, 'requests');
  if (errors.some((v) => v > 0)) line(errors, 'errors');
  return svg;
}

function renderOverview(o: Overview): void {
  const fact = (name: string, value: Child, cls = '', id = '') =>
    h('div', {}, h('dt', {}, name), h('dd', { class: cls, ...(id ? { id } : {}) }, value));
  const store = o.rate_limit.store;
  const reachable = o.rate_limit.reachable;
  const storeText =
    store === 'none'
      ? 'not used'
      : `${store}${o.rate_limit.deployment === null ? '' : ` (${o.rate_limit.deployment})`}${
          reachable === null ? '' : reachable ? ', reachable' : ', UNREACHABLE'
        }`;
  const tracing = !o.tracing.enabled ? 'off' : `${o.tracing.endpoint ?? ''} (${o.tracing.export ?? 'idle'})`;
  byId('facts').replaceChildren(
    fact('Uptime', duration(o.instance.uptime_seconds)),
    fact('Primary', `pid ${o.instance.pid}, Node ${o.instance.node}`),
    fact('Config', h('code', {}, o.config.hash.slice(0, 12)), '', 'config-hash'),
    fact('Loaded', `${time(o.config.loaded_at)} from ${o.config.source}`),
    fact('Rate-limit store', storeText, reachable === false ? 'bad' : ''),
    fact('Tracing', tracing, o.tracing.export === 'failing' ? 'bad' : ''),
  );
  byId('config-hash').dataset.hash = o.config.hash;
  const last = o.config.last_reload;
  const box = byId('last-reload');
  box.dataset.result = last?.result ?? 'none';
  if (last === null) box.replaceChildren(h('span', { class: 'muted' }, 'No reload since start.'));
  else {
    const cls = last.result === 'failure' ? 'bad' : 'good';
    const problems = last.errors.map((e) =>
      h(
        'li',
        { class: 'mono' },
        `${o.config.source}${e.line === null ? '' : `:${e.line}${e.column === null ? '' : `:${e.column}`}`}: `,
        e.path === null ? null : h('strong', { class: 'key-path' }, e.path),
        e.path === null ? e.message : `: ${e.message}`,
      ),
    );
    box.replaceChildren(
      h('span', {}, 'Last reload: '),
      h('strong', { class: cls }, last.result),
      ` at ${time(last.at)}`,
      problems.length ? h('ul', {}, ...problems) : '',
    );
  }
  rows('workers').replaceChildren(
    ...o.workers.map((w) =>
      h(
        'tr',
        {},
        num(String(w.slot)),
        num(w.pid === null ? '–' : String(w.pid)),
        num(duration(w.uptime_seconds)),
        num(String(w.restarts), w.restarts > 0 ? 'warn' : ''),
        num(bytes(w.rss_bytes)),
        num(ms(w.event_loop_delay_ms), (w.event_loop_delay_ms ?? 0) > 100 ? 'bad' : ''),
      ),
    ),
  );
}

function renderRoutes(routes: RouteRow[]): void {
  rows('routes').replaceChildren(
    ...routes.map((r) => {
      const t = r.traffic;
      const head = [
        h('td', {}, h('span', { class: 'muted' }, r.methods?.join(',') ?? '*'), ' ', h('code', {}, r.path)),
        h('td', {}, r.upstream === null ? h('code', {}, r.target ?? '') : `upstream ${r.upstream}`),
        h('td', { class: 'muted' }, r.middleware.join(', ') || '–'),
      ];
      const cells = !t
        ? [h('td', { class: 'muted', colspan: '6' }, 'no metrics (add the metrics middleware)')]
        : [
            num(rate(t.requests_per_second)),
            num(rate(t.errors_4xx_per_second), t.errors_4xx_per_second > 0 ? 'warn' : ''),
            num(rate(t.errors_5xx_per_second), t.errors_5xx_per_second > 0 ? 'bad' : ''),
            num(ms(t.p50_ms)),
            num(ms(t.p99_ms)),
            h('td', {}, sparkline(t.requests, t.errors_5xx)),
          ];
      return h(
        'tr',
        { 'data-route': r.path, 'data-rate': String(t?.requests_per_second ?? '') },
        ...head,
        ...cells,
      );
    }),
  );
}

function renderUpstreams(upstreams: Upstream[]): void {
  const out: HTMLElement[] = [];
  for (const u of upstreams) {
    const breaker = u.circuit_breaker;
    const breakerText =
      breaker.state === 'open' ? `open (${breaker.retry_after} s)` : breaker.state.replace('_', '-');
    const retries = `${u.retry.retries}${u.retry.budget_exhausted ? `, ${u.retry.budget_exhausted} refused` : ''}`;
    for (const e of u.endpoints) {
      out.push(
        h(
          'tr',
          { class: `state-${e.state}`, 'data-endpoint': `${u.name}/${e.id}`, 'data-state': e.state },
          h('td', {}, u.implicit ? null : h('span', { class: 'muted' }, `${u.name} `), h('code', {}, e.id)),
          h(
            'td',
            {},
            h('span', { class: `badge state-${e.state}` }, e.state),
            e.reason ? ` ${e.reason}` : null,
          ),
          h('td', {}, time(e.since)),
          num(String(e.in_flight)),
          num(String(e.weight)),
          h(
            'td',
            { class: breaker.state === 'closed' ? '' : 'bad' },
            `${breakerText}, ${breaker.trips} trips`,
          ),
          num(retries),
        ),
      );
    }
  }
  rows('upstreams').replaceChildren(...out);
}

function renderErrors(errors: RecentError[]): void {
  rows('errors').replaceChildren(
    ...(errors.length === 0
      ? [h('tr', {}, h('td', { class: 'muted', colspan: '5' }, 'None since start.'))]
      : errors.map((e) =>
          h(
            'tr',
            { 'data-request-id': e.request_id, 'data-status': String(e.status) },
            h('td', {}, time(e.time)),
            h('td', {}, h('span', { class: 'muted' }, `${e.method} `), h('code', {}, e.route)),
            num(String(e.status), 'bad'),
            h('td', {}, h('code', {}, e.code)),
            h('td', {}, h('code', {}, e.request_id)),
          ),
        )),
  );
}

class Unauthorized extends Error {}

async function get<T>(path: string): Promise<T> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    cache: 'no-store',
  });
  if (res.status === 401) throw new Unauthorized();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

let timer: number | undefined;

async function refresh(): Promise<void> {
  const connection = byId('connection');
  try {
    const [overview, traffic, upstreams, errors] = await Promise.all([
      get<Overview>('/admin/overview'),
      get<{ routes: RouteRow[] }>('/admin/traffic'),
      get<{ upstreams: Upstream[] }>('/admin/upstreams'),
      get<{ errors: RecentError[] }>('/admin/errors'),
    ]);
    renderOverview(overview);
    renderRoutes(traffic.routes);
    renderUpstreams(upstreams.upstreams);
    renderErrors(errors.errors);
    byId('main').hidden = false;
    connection.textContent = `updated ${new Date().toLocaleTimeString()}`;
    connection.className = 'muted';
  } catch (err) {
    if (err instanceof Unauthorized) {
      askForToken(sessionStorage.getItem(TOKEN_KEY) !== null);
      return; // polling resumes once a token is given
    }
    connection.textContent = `not reachable (${err instanceof Error ? err.message : String(err)}); retrying`;
    connection.className = 'bad';
  }
  timer = window.setTimeout(() => void refresh(), POLL_MS);
}

function askForToken(rejected: boolean): void {
  window.clearTimeout(timer);
  byId('main').hidden = true;
  byId('token-error').textContent = rejected ? 'That token was refused.' : '';
  byId('connection').textContent = 'admin token needed';
  byId('token-form').hidden = false;
  byId<HTMLInputElement>('token').focus();
}

byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  // Kept for this tab only: asked once, gone when the tab closes.
  sessionStorage.setItem(TOKEN_KEY, byId<HTMLInputElement>('token').value);
  byId('token-form').hidden = true;
  void refresh();
});

void refresh();
