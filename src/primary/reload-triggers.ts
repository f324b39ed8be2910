import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../shared/config/schema.js';
import { type ConfigWatch, contentHash, watchConfigFile } from './config-watch.js';

/**
 * The file-change trigger of reload: a watch on the config file while `reload.watch` is on
 * (a reload that turns it off stops it). An inline config has no file to watch.
 */
export function configWatch(
  source: string,
  reload: (trigger: string) => void,
  logger: Logger,
): { set(config: Config): void; close(): void } {
  let watch: ConfigWatch | undefined;
  let closed = false;
  return {
    set(config) {
      const wanted = config.reload.watch && !source.startsWith('<') && !closed;
      if (!wanted) {
        watch?.close();
        watch = undefined;
        return;
      }
      if (watch !== undefined) return;
      let initial = '';
      try {
        initial = contentHash(readFileSync(source));
      } catch {
        // Gone since start: the first content that appears is a change.
      }
      watch = watchConfigFile(source, initial, {
        onChange: () => reload('file changed'),
        onError: (err) => logger.warn({ err: err.message, file: source }, 'config watch failed'),
      });
      logger.info({ file: source }, 'watching the config file for changes');
    },
    close() {
      closed = true;
      watch?.close();
      watch = undefined;
    },
  };
}
