import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config/schema.js';

/** A request record's head (`GET /users/42 200 1.9ms`); `key=value` in any other record. */
const HEAD_FIELDS = ['method', 'path', 'status', 'duration_ms'] as const;
/** Written as `key=value` after the message, in this order. */
const TAG_FIELDS = ['route', 'request_id', 'trace_id', 'client_ip', 'worker'] as const;
/** Fields the text format writes itself (`aborted` as a word), instead of in the JSON tail. */
const TEXT_OWN_FIELDS = [...HEAD_FIELDS, ...TAG_FIELDS, 'aborted'];

const show = (value: unknown): string =>
  typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);

/**
 * One line for a record: `GET /users/42 200 1.9ms route=/users/:id request_id=… worker=0`
 * for a request, the message plus `key=value` for the others; anything else rides along as
 * pino-pretty's single-line JSON tail.
 */
function textMessage(log: Record<string, unknown>, messageKey: string): string {
  const parts: string[] = [];
  if (log[messageKey] === 'request' && log.method !== undefined) {
    parts.push(`${show(log.method)} ${show(log.path)} ${show(log.status)} ${show(log.duration_ms)}ms`);
    if (log.aborted === true) parts.push('aborted');
  } else {
    parts.push(show(log[messageKey] ?? ''));
    for (const key of HEAD_FIELDS) if (log[key] !== undefined) parts.push(`${key}=${show(log[key])}`);
  }
  for (const key of TAG_FIELDS) if (log[key] !== undefined) parts.push(`${key}=${show(log[key])}`);
  return parts.join(' ');
}

/**
 * The process logger. JSON goes through pino's asynchronous destination so a log line never
 * blocks the event loop on a slow stdout; `text` renders the same records for humans, one
 * line each (errors keep their stack below the line).
 */
export function createLogger(logging: Config['logging'], bindings: Record<string, unknown>): Logger {
  const options = { level: logging.level, base: bindings, timestamp: pino.stdTimeFunctions.isoTime };
  if (logging.format === 'text') {
    return pino(
      options,
      pretty({
        colorize: Boolean(process.stdout.isTTY),
        sync: false,
        singleLine: true,
        translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
        ignore: ['hostname', 'pid', 'role', ...TEXT_OWN_FIELDS].join(','),
        messageFormat: textMessage,
      }),
    );
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}
