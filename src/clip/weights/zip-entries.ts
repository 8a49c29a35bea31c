// The entries of a zip archive as byte ranges of the file, for PyTorch checkpoints
// (torch-checkpoint.ts). torch.save writes every entry uncompressed ("stored"), so a tensor is a
// plain byte range that can be read on demand with positioned reads, like a safetensors
// tensor. Written here rather than with a zip library because those (yauzl, adm-zip, jszip)
// hand out entries as streams or whole in-memory buffers; this needs synchronous random access
// into multi-GB files without holding them in memory. Zip64 is handled; compressed entries are
// listed (their method says so) but cannot be read as ranges: readers refuse them.
import fs from 'node:fs';
import { readFully } from './tensor-source.ts';

export interface ZipEntry {
  /** Absolute offset of the entry's data in the file. */
  dataOffset: number;
  size: number;
  /** Compression method: 0 = stored. Only stored entries are byte ranges of their data. */
  method: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;

function read(fd: number, position: number, length: number, file: string): Buffer {
  const buf = Buffer.alloc(length);
  readFully(fd, buf, position, file);
  return buf;
}

function u64(buf: Buffer, at: number, file: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${file}: zip offset ${v} is too large`);
  return Number(v);
}

/** Every entry of the archive at `fd` by name. Throws with the file name on anything malformed. */
export function readZipEntries(fd: number, file: string): Map<string, ZipEntry> {
  const fileSize = fs.fstatSync(fd).size;
  // The end-of-central-directory record is in the last 22 + 65,535 (comment) bytes.
  const tailLength = Math.min(fileSize, 22 + 65_535);
  const tail = read(fd, fileSize - tailLength, tailLength, file);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip archive (no end-of-central-directory record)`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || tail.readUInt32LE(locator) !== ZIP64_LOCATOR) throw new Error(`${file}: zip64 archive without its locator`);
    const recordOffset = u64(tail, locator + 8, file);
    const record = read(fd, recordOffset, 56, file);
    if (record.readUInt32LE(0) !== ZIP64_EOCD) throw new Error(`${file}: bad zip64 end-of-central-directory record`);
    count = u64(record, 32, file);
    cdSize = u64(record, 40, file);
    cdOffset = u64(record, 48, file);
  }
  if (cdSize > MAX_CENTRAL_DIRECTORY || cdOffset + cdSize > fileSize) throw new Error(`${file}: zip central directory out of bounds`);
  const cd = read(fd, cdOffset, cdSize, file);

  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let n = 0; n < count; n++) {
    if (at + 46 > cd.length || cd.readUInt32LE(at) !== CENTRAL) throw new Error(`${file}: corrupt zip central directory (entry ${n})`);
    const method = cd.readUInt16LE(at + 10);
    let size = cd.readUInt32LE(at + 24);
    let compressed = cd.readUInt32LE(at + 20);
    let localOffset = cd.readUInt32LE(at + 42);
    const nameLength = cd.readUInt16LE(at + 28);
    const extraLength = cd.readUInt16LE(at + 30);
    const commentLength = cd.readUInt16LE(at + 32);
    const name = cd.toString('utf8', at + 46, at + 46 + nameLength);
    // Zip64 extended information: the 8-byte values of the fields saturated above, in order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = cd.readUInt16LE(extra);
      const length = cd.readUInt16LE(extra + 2);
      if (id === 0x0001) {
        let p = extra + 4;
        if (size === 0xffffffff) {
          size = u64(cd, p, file);
          p += 8;
        }
        if (compressed === 0xffffffff) {
          compressed = u64(cd, p, file);
          p += 8;
        }
        if (localOffset === 0xffffffff) localOffset = u64(cd, p, file);
      }
      extra += 4 + length;
    }
    at = extraEnd + commentLength;
    const local = read(fd, localOffset, 30, file);
    if (local.readUInt32LE(0) !== LOCAL) throw new Error(`${file}: corrupt zip local header for ${name}`);
    const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (dataOffset + size > fileSize) throw new Error(`${file}: zip entry ${name} runs past the end of the file`);
    entries.set(name, { dataOffset, size: method === 0 ? size : compressed, method });
  }
  return entries;
}
