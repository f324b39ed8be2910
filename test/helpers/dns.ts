import { createUDPServer, Packet, type UDPServer } from 'dns2';

/*
 * A real DNS server (dns2, UDP) on 127.0.0.1 that answers from a table the test changes at
 * any time. UDP only: every answer here fits in 512 bytes, so no resolver falls back to TCP.
 * `stop()`/`start()` take it down and bring it back on the same port ("resolver down": a
 * query then meets a closed port); `mute` keeps the port but drops every query (a resolver
 * that never answers).
 */

export interface SrvRecord {
  target: string;
  port: number;
  priority: number;
  weight: number;
}

export interface DnsRecords {
  a?: string[];
  aaaa?: string[];
  srv?: SrvRecord[];
}

export interface TestDns {
  /** `127.0.0.1:<port>`, as `discovery.resolvers` takes it. */
  readonly server: string;
  readonly port: number;
  /** TTL (seconds) of every record answered from now on. */
  ttl: number;
  /** Drop every query without answering while true. */
  mute: boolean;
  /** Every question asked, in order: `A example.test`. */
  readonly queries: string[];
  /** Sets (or with `undefined` removes: NXDOMAIN) the records of `name`. */
  set(name: string, records: DnsRecords | undefined): void;
  stop(): Promise<void>;
  /** Listens again on the same port after `stop()`. */
  start(): Promise<void>;
}

/** dns2's typings lack RCODE and want class instances for records; the wire values are plain. */
const NXDOMAIN = 3;
type Record_ = Packet['answers'][number];

const TYPE_NAMES: Record<number, string> = {
  [Packet.TYPE.A]: 'A',
  [Packet.TYPE.AAAA]: 'AAAA',
  [Packet.TYPE.SRV]: 'SRV',
};

export async function startDns(options: { ttl?: number } = {}): Promise<TestDns> {
  const table = new Map<string, DnsRecords>();
  let server: UDPServer | undefined;
  let port = 0;

  const dns: TestDns = {
    get server() {
      return `127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    ttl: options.ttl ?? 1,
    mute: false,
    queries: [],
    set(name, records) {
      if (records === undefined) table.delete(name.toLowerCase());
      else table.set(name.toLowerCase(), records);
    },
    async stop() {
      const running = server;
      server = undefined;
      if (running) await new Promise<void>((resolve) => running.close(() => resolve()));
    },
    async start() {
      if (server) return;
      const next = createUDPServer((request, send) => {
        const [question] = request.questions;
        if (question === undefined) return;
        dns.queries.push(`${TYPE_NAMES[question.type] ?? String(question.type)} ${question.name}`);
        if (dns.mute) return;
        void send(answer(request, table.get(question.name.toLowerCase()), dns.ttl));
      });
      await next.listen(port, '127.0.0.1');
      port = next.address().port;
      server = next;
    },
  };
  await dns.start();
  return dns;
}

function answer(request: Packet, records: DnsRecords | undefined, ttl: number): Packet {
  const response = Packet.createResponseFromRequest(request);
  const [question] = request.questions;
  if (question === undefined) return response;
  if (records === undefined) {
    response.header.rcode = NXDOMAIN;
    return response;
  }
  const add = (type: number, data: object) =>
    response.answers.push({ name: question.name, class: Packet.CLASS.IN, ttl, type, ...data } as Record_);
  switch (question.type) {
    case Packet.TYPE.A:
      for (const address of records.a ?? []) add(Packet.TYPE.A, { address });
      break;
    case Packet.TYPE.AAAA:
      for (const address of records.aaaa ?? []) add(Packet.TYPE.AAAA, { address });
      break;
    case Packet.TYPE.SRV:
      for (const srv of records.srv ?? []) add(Packet.TYPE.SRV, srv);
      break;
  }
  return response;
}
