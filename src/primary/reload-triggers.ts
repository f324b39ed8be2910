import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../shared/config/schema.js';
import { type ConfigWatch, contentHash, watchConfigFile } from './config-watch.js';

/** Quiet time after the last TLS file change before the one reload they share. */
const TLS_SETTLE_MS = 300;

/**
 * The file-change trigger of reload: a watch on the config file while `reload.watch` is on
 * (a reload that turns it off stops it). An inline config has no file to watch.
 *
 * Issue 15: every TLS file the config names (certificates, keys, CAs, whoever reads them
 * through `TlsFileReader`) is watched the same way. A certificate and its key are usually
 * replaced one after the other: their changes share one reload after `TLS_SETTLE_MS` of
 * quiet, so the pair is read together rather than half-replaced.
 */
export function configWatch(
  source: string,
  reload: (trigger: string) => void,
  logger: Logger,
): { set(config: Config, tlsFiles?: readonly string[]): void; close(): void } {
  let watch: ConfigWatch | undefined;
  let closed = false;
  const tlsWatches = new Map<string, ConfigWatch>();
  let tlsTimer: NodeJS.Timeout | undefined;
  const changed = new Set<string>();
  const tlsChanged = (file: string) => {
    changed.add(file);
    clearTimeout(tlsTimer);
    tlsTimer = setTimeout(() => {
      const files = [...changed];
      changed.clear();
      reload(`TLS file changed: ${files.join(', ')}`);
    }, TLS_SETTLE_MS);
  };
  const setTlsFiles = (files: readonly string[]) => {
    const wanted = new Set(files);
    for (const [file, existing] of tlsWatches) {
      if (wanted.has(file)) continue;
      existing.close();
      tlsWatches.delete(file);
    }
    for (const file of wanted) {
      if (tlsWatches.has(file)) continue;
      tlsWatches.set(
        file,
        watchConfigFile(file, hashOf(file), {
          onChange: () => tlsChanged(file),
          onError: (err) => logger.warn({ err: err.message, file }, 'TLS file watch failed'),
        }),
      );
    }
  };
  return {
    set(config, tlsFiles = []) {
      const wanted = config.reload.watch && !closed;
      setTlsFiles(wanted ? tlsFiles : []);
      if (!wanted || source.startsWith('<')) {
        watch?.close();
        watch = undefined;
        return;
      }
      if (watch !== undefined) return;
      watch = watchConfigFile(source, hashOf(source), {
        onChange: () => reload('file changed'),
        onError: (err) => logger.warn({ err: err.message, file: source }, 'config watch failed'),
      });
      logger.info({ file: source }, 'watching the config file for changes');
    },
    close() {
      closed = true;
      clearTimeout(tlsTimer);
      watch?.close();
      watch = undefined;
      setTlsFiles([]);
    },
  };
}

function hashOf(file: string): string {
  try {
    return contentHash(readFileSync(file));
  } catch {
    // Gone since it was read: the first content that appears is a change.
    return '';
  }
}
