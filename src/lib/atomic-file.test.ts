import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { replaceFile } from './atomic-file.js';

describe('replaceFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dspool-atomic-'));
  afterEach(() => {
    for (const name of readdirSync(dir)) rmSync(join(dir, name), { force: true });
  });

  it('swaps the whole file: a reader that opened the old one reads all of it, a new reader all of the new one', () => {
    const file = join(dir, 'runtime.json');
    const old = `${JSON.stringify({ pid: 1, pad: 'x'.repeat(100_000) })}\n`;
    writeFileSync(file, old);
    const fd = openSync(file, 'r');
    try {
      replaceFile(file, '{"pid":2}\n', 0o640);
      // An in-place rewrite would have truncated what the open descriptor reads.
      const buffer = Buffer.alloc(old.length + 10);
      expect(readSync(fd, buffer, 0, buffer.length, 0)).toBe(old.length);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('{"pid":2}\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['runtime.json']);
  });

  it('gives the file exactly the mode asked for, whatever the umask', () => {
    const file = join(dir, 'shared');
    const before = process.umask(0o077);
    try {
      replaceFile(file, 'x', 0o644);
    } finally {
      process.umask(before);
    }
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  it('leaves the old file and no temporary file when it cannot replace it', () => {
    const file = join(dir, 'kept');
    writeFileSync(file, 'old');
    expect(() => replaceFile(join(dir, 'missing-dir', 'x'), 'new', 0o644)).toThrow(/ENOENT/);
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['kept']);
  });
});
