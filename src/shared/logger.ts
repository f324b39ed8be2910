import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config/schema.js';

/**
 * The process logger. JSON goes through pino's asynchronous destination so a log line never
 * blocks the event loop on a slow stdout; `text` renders the same records for humans.
 */
export function createLogger(logging: Config['logging'], bindings: Record<string, unknown>): Logger {
  const options = { level: logging.level, base: bindings, timestamp: pino.stdTimeFunctions.isoTime };
  if (logging.format === 'text') {
    return pino(
      options,
      pretty({ colorize: Boolean(process.stdout.isTTY), sync: false, ignore: 'hostname' }),
    );
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}
