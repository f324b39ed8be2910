/*
 * Just enough RESP for the primary's start-up probe to ask one question of a sentinel or a
 * cluster node over the socket it already verified (ioredis stays out of the primary: it
 * would cost every gateway with Redis its load time, for two commands).
 */

/** A reply: simple string, error (as an Error), integer, bulk string (or null), flat array. */
export type RespReply = string | number | null | Error | RespReply[];

/** One command as RESP: an array of bulk strings. */
export function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * The replies in `data`, in order, as far as they are complete (`done` = bytes consumed).
 * Nested arrays are read too; a reply cut short stops the reading until more data comes.
 */
export function readReplies(data: Buffer): { replies: RespReply[]; done: number } {
  const replies: RespReply[] = [];
  let at = 0;
  for (;;) {
    const read = readOne(data, at);
    if (read === undefined) return { replies, done: at };
    replies.push(read.reply);
    at = read.next;
  }
}

function readOne(data: Buffer, at: number): { reply: RespReply; next: number } | undefined {
  const end = data.indexOf('\r\n', at);
  if (end === -1) return undefined;
  const line = data.toString('utf8', at + 1, end);
  const next = end + 2;
  switch (data[at]) {
    case 0x2b: // +
      return { reply: line, next };
    case 0x2d: // -
      return { reply: new Error(line), next };
    case 0x3a: // :
      return { reply: Number(line), next };
    case 0x24: {
      // $
      const length = Number(line);
      if (length < 0) return { reply: null, next };
      if (data.length < next + length + 2) return undefined;
      return { reply: data.toString('utf8', next, next + length), next: next + length + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count < 0) return { reply: null, next };
      const items: RespReply[] = [];
      let from = next;
      for (let i = 0; i < count; i++) {
        const item = readOne(data, from);
        if (item === undefined) return undefined;
        items.push(item.reply);
        from = item.next;
      }
      return { reply: items, next: from };
    }
    default:
      return { reply: new Error(`not RESP: ${JSON.stringify(line.slice(0, 40))}`), next: data.length };
  }
}
