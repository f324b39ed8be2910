import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { contentHash, watchConfigFile } from '../src/primary/config-watch.js';
import { sleep } from './helpers/net.js';

const DEBOUNCE_MS = 200;
const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A watched config file in a fresh directory, and every content the watcher reported. */
async function watched(setup: (dir: string) => Promise<string>) {
  const dir = await mkdtemp(join(tmpdir(), 'portico-watch-'));
  dirs.push(dir);
  const file = await setup(dir);
  const seen: string[] = [];
  const watch = watchConfigFile(file, contentHash(await readFile(file)), {
    debounceMs: DEBOUNCE_MS,
    onChange: (text, hash) => {
      assert.equal(hash, contentHash(text));
      seen.push(text.toString('utf8'));
    },
  });
  // Lets a burst settle: the debounce plus the read.
  const settle = () => sleep(DEBOUNCE_MS * 4);
  return { dir, file, seen, watch, settle };
}

const plainFile = async (dir: string) => {
  const file = join(dir, 'config.yaml');
  await writeFile(file, 'v: 1\n');
  return file;
};

describe('config file watch', () => {
  test('an in-place write is reported once, with the new content', async () => {
    const w = await watched(plainFile);
    try {
      await writeFile(w.file, 'v: 2\n');
      await w.settle();
      assert.deepEqual(w.seen, ['v: 2\n']);
    } finally {
      w.watch.close();
    }
  });

  test('an editor save (write a temporary file, rename it over the old one) is seen', async () => {
    const w = await watched(plainFile);
    try {
      await writeFile(join(w.dir, '.config.yaml.swp'), 'v: 3\n');
      await rename(join(w.dir, '.config.yaml.swp'), w.file);
      await w.settle();
      await writeFile(join(w.dir, '.config.yaml.swp'), 'v: 4\n');
      await rename(join(w.dir, '.config.yaml.swp'), w.file);
      await w.settle();
      assert.deepEqual(w.seen, ['v: 3\n', 'v: 4\n']);
    } finally {
      w.watch.close();
    }
  });

  test('a Kubernetes ConfigMap swap (the ..data symlink renamed to a new directory) is seen', async () => {
    const w = await watched(async (dir) => {
      for (const [version, text] of [
        ['..2026_1', 'v: 1\n'],
        ['..2026_2', 'v: 2\n'],
        ['..2026_3', 'v: 3\n'],
      ] as const) {
        await mkdir(join(dir, version));
        await writeFile(join(dir, version, 'config.yaml'), text);
      }
      await symlink('..2026_1', join(dir, '..data'));
      await symlink('..data/config.yaml', join(dir, 'config.yaml'));
      return join(dir, 'config.yaml');
    });
    const swapTo = async (version: string) => {
      await symlink(version, join(w.dir, '..data_tmp'));
      await rename(join(w.dir, '..data_tmp'), join(w.dir, '..data'));
      await w.settle();
    };
    try {
      await swapTo('..2026_2');
      await swapTo('..2026_3');
      assert.deepEqual(w.seen, ['v: 2\n', 'v: 3\n']);
    } finally {
      w.watch.close();
    }
  });

  test('an in-place edit of a symlink target in another directory is seen', async () => {
    const w = await watched(async (dir) => {
      await mkdir(join(dir, 'real'));
      await writeFile(join(dir, 'real', 'gateway.yaml'), 'v: 1\n');
      await mkdir(join(dir, 'etc'));
      await symlink(join(dir, 'real', 'gateway.yaml'), join(dir, 'etc', 'config.yaml'));
      return join(dir, 'etc', 'config.yaml');
    });
    try {
      await sleep(DEBOUNCE_MS); // the target's directory is watched once the link is resolved
      await writeFile(join(w.dir, 'real', 'gateway.yaml'), 'v: 2\n');
      await w.settle();
      assert.deepEqual(w.seen, ['v: 2\n']);
    } finally {
      w.watch.close();
    }
  });

  test('a burst of writes is reported once, with the last content; a touch or equal bytes is none', async () => {
    const w = await watched(plainFile);
    try {
      for (let i = 0; i < 10; i++) {
        await writeFile(w.file, `v: ${10 + i}\n`);
        await sleep(10);
      }
      await w.settle();
      await utimes(w.file, new Date(), new Date());
      await writeFile(w.file, 'v: 19\n');
      await w.settle();
      assert.deepEqual(w.seen, ['v: 19\n']);
    } finally {
      w.watch.close();
    }
  });

  test('a file deleted and written anew is reported when it is back; nothing after close', async () => {
    const w = await watched(plainFile);
    try {
      await unlink(w.file);
      await w.settle();
      assert.deepEqual(w.seen, []);
      await writeFile(w.file, 'v: 5\n');
      await w.settle();
      assert.deepEqual(w.seen, ['v: 5\n']);
      w.watch.close();
      await writeFile(w.file, 'v: 6\n');
      await w.settle();
      assert.deepEqual(w.seen, ['v: 5\n']);
    } finally {
      w.watch.close();
    }
  });
});
