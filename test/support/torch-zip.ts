// Writes a state dict of float32 tensors the way torch.save (zip format, pickle protocol 2)
// does, so tests can turn a generated model into `open_clip_pytorch_model.bin` /
// `pytorch_model.bin`. Checked once by hand: torch 1.13's torch.load reads the files this writes
// to the same values; the reader's own known answers come from files torch.save wrote
// (test/fixtures/torch-state-dict.bin).
import { crc32 } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import type { Tensor32 } from '../../src/clip/types.ts';

class PickleWriter {
  private parts: Buffer[] = [];
  op(...bytes: number[]) {
    this.parts.push(Buffer.from(bytes));
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    this.op(0x58);
    this.parts.push(len, b);
  }
  int(n: number) {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    this.parts.push(b);
  }
  global(module: string, name: string) {
    this.op(0x63);
    this.parts.push(Buffer.from(`${module}\n${name}\n`, 'utf8'));
  }
  tuple(values: number[]) {
    this.op(0x28);
    for (const v of values) this.int(v);
    this.op(0x74);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function zip(entries: { name: string; data: Buffer }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** `tensors` as torch.save would write an OrderedDict of contiguous float32 tensors. */
export function writeTorchStateDict(file: string, tensors: Record<string, Tensor32>, archive = 'archive'): void {
  const p = new PickleWriter();
  const storages: { name: string; data: Buffer }[] = [];
  p.op(0x80, 2);
  p.global('collections', 'OrderedDict');
  p.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
  p.op(0x28); // MARK
  Object.entries(tensors).forEach(([name, t], i) => {
    const count = t.data.length;
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.op(0x28); // MARK (args)
    p.op(0x28); // MARK (persistent id)
    p.str('storage');
    p.global('torch', 'FloatStorage');
    p.str(String(i));
    p.str('cpu');
    p.int(count);
    p.op(0x74, 0x51); // TUPLE BINPERSID
    p.int(0);
    p.tuple(t.shape);
    p.tuple(stride);
    p.op(0x89); // False (requires_grad)
    p.global('collections', 'OrderedDict');
    p.op(0x29, 0x52); // backward hooks: OrderedDict()
    p.op(0x74, 0x52); // TUPLE REDUCE
    storages.push({ name: `${archive}/data/${i}`, data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  });
  p.op(0x75, 0x2e); // SETITEMS STOP
  writeFileSync(file, zip([{ name: `${archive}/data.pkl`, data: p.bytes() }, ...storages, { name: `${archive}/version`, data: Buffer.from('3\n') }]));
}
