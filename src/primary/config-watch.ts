import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export interface ConfigWatchOptions {
  /** Quiet time after the last file-system event before the file is read (default 300 ms). */
  debounceMs?: number;
  /** The new bytes behind the path, when they differ from the last ones seen. */
  onChange(text: Buffer, hash: string): void;
  /** A watcher failed (the directory went away…); watching goes on where it still can. */
  onError?(err: Error): void;
}

export interface ConfigWatch {
  close(): void;
}

/** The content hash the watcher compares: sha256 of the file's bytes, hex. */
export const contentHash = (bytes: Buffer | string): string =>
  createHash('sha256').update(bytes).digest('hex');

/**
 * Watches a config file the way it is really replaced, and reports each new content once.
 *
 * The directory is watched, not the file: editors write a temporary file and rename it over
 * the old one (a watch on the old inode sees nothing after), and Kubernetes swaps a ConfigMap
 * by renaming a `..data` symlink in the same directory. When the path is a symlink into
 * another directory, that directory is watched too, so an in-place edit of the target counts.
 *
 * Events come in bursts (a save is several), so the file is read only after `debounceMs`
 * without one, and compared by content hash: touching a file, or a swap to equal bytes, is no
 * change. A file read mid-write that does not parse is the caller's concern: the next event
 * of the same save brings the complete one (reload validates before it applies anything).
 */
export function watchConfigFile(file: string, initialHash: string, options: ConfigWatchOptions): ConfigWatch {
  const path = resolve(file);
  const debounceMs = options.debounceMs ?? 300;
  let lastHash = initialHash;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const watchers = new Map<string, FSWatcher>();

  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), debounceMs);
  };

  const watchDir = (dir: string) => {
    if (watchers.has(dir)) return;
    try {
      const watcher = watch(dir, { persistent: false }, schedule);
      watcher.on('error', (err) => {
        watchers.delete(dir);
        options.onError?.(err);
      });
      watchers.set(dir, watcher);
    } catch (err) {
      options.onError?.(err as Error);
    }
  };

  // The directory of the symlink's target changes with a swap: watch the current one only.
  let targetDir: string | undefined;
  const followTarget = async () => {
    let dir: string | undefined;
    try {
      dir = dirname(await realpath(path));
    } catch {
      return; // gone for now (mid-swap, deleted): the next event retries
    }
    if (closed || dir === targetDir) return;
    if (targetDir !== undefined && targetDir !== dirname(path)) {
      watchers.get(targetDir)?.close();
      watchers.delete(targetDir);
    }
    targetDir = dir;
    watchDir(dir);
  };

  const check = async () => {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      return; // deleted or mid-swap: a later event brings the new file
    }
    await followTarget();
    const hash = contentHash(bytes);
    if (closed || hash === lastHash) return;
    lastHash = hash;
    options.onChange(bytes, hash);
  };

  watchDir(dirname(path));
  void followTarget();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
