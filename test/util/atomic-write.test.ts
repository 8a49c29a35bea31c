import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomicFileSync, writeAtomicSync, writeFileAtomic, writeFileAtomicSync } from '../../src/util/atomic-write.ts';

const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

describe('atomic writes', () => {
  it('replace a file whole, sync and async, with and without fsync, leaving nothing else', async () => {
    writeFileSync(file('a.txt'), 'old');
    writeFileAtomicSync(file('a.txt'), 'new');
    expect(readFileSync(file('a.txt'), 'utf8')).toBe('new');
    await writeFileAtomic(file('b.bin'), Uint8Array.of(1, 2, 3), { fsync: true });
    expect([...readFileSync(file('b.bin'))]).toEqual([1, 2, 3]);
    writeFileAtomicSync(file('c.txt'), 'x', { fsync: true });
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.bin', 'c.txt']);
  });

  it('on failure keep the old target and remove the temporary file', async () => {
    writeFileSync(file('keep.txt'), 'old');
    expect(() =>
      writeAtomicSync(file('keep.txt'), (out) => {
        out.write(Buffer.from('half'));
        throw new Error('producer failed');
      }),
    ).toThrow('producer failed');
    expect(readFileSync(file('keep.txt'), 'utf8')).toBe('old');
    // The rename fails: the target is a non-empty folder.
    await expect(writeFileAtomic(dir, 'x')).rejects.toThrow();
    expect(() => writeFileAtomicSync(dir, 'x')).toThrow();
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('a long-lived file appears only on commit; abandon drops it', () => {
    const streamed = new AtomicFileSync(file('s.data'));
    streamed.write(Buffer.from('abc'));
    streamed.write(Buffer.from('def'));
    expect(readdirSync(dir)).not.toContain('s.data');
    streamed.commit();
    expect(readFileSync(file('s.data'), 'utf8')).toBe('abcdef');
    const dropped = new AtomicFileSync(file('d.data'));
    dropped.write(Buffer.from('x'));
    dropped.abandon();
    dropped.abandon();
    expect(readdirSync(dir).filter((f) => f.startsWith('d.data'))).toEqual([]);
  });
});
