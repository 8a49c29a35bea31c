// The restricted unpickler of PyTorch checkpoints (method.md §1), for torch-checkpoint.ts.
// A pickle is a program: Python's unpickler calls whatever globals it names, which is how a
// malicious checkpoint runs code. This one is a small stack machine that knows the opcodes
// torch.save emits and only these globals: OrderedDict, the tensor and parameter rebuild
// functions and the storage types. Anything else is refused with its name; nothing in the file
// is ever executed.

/** Storage classes → safetensors dtype names (so the tensors decode with dtypes.ts, as safetensors files do). */
export const STORAGE_DTYPES: Record<string, { dtype: string; bytes: number }> = {
  'torch.FloatStorage': { dtype: 'F32', bytes: 4 },
  'torch.HalfStorage': { dtype: 'F16', bytes: 2 },
  'torch.BFloat16Storage': { dtype: 'BF16', bytes: 2 },
  'torch.DoubleStorage': { dtype: 'F64', bytes: 8 },
  'torch.LongStorage': { dtype: 'I64', bytes: 8 },
  'torch.IntStorage': { dtype: 'I32', bytes: 4 },
  'torch.ShortStorage': { dtype: 'I16', bytes: 2 },
  'torch.CharStorage': { dtype: 'I8', bytes: 1 },
  'torch.ByteStorage': { dtype: 'U8', bytes: 1 },
  'torch.BoolStorage': { dtype: 'BOOL', bytes: 1 },
};

const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETERS = new Set(['torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);

/** A global the pickle named and this reader allows. */
export class PyGlobal {
  constructor(readonly name: string) {}
}

export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: string,
    readonly itemBytes: number,
    readonly numel: number,
  ) {}
}

export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** A pickle this reader refuses: a global outside the allowlist, an unknown opcode, bad structure. */
export class UnsafePickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafePickleError';
  }
}

function isIntList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
}

/**
 * Runs the pickle in `data` with only the allowed globals; returns the top-level object (Maps for
 * dicts, arrays for lists and tuples, TensorRef for tensors).
 */
export function unpickle(data: Uint8Array, persistentLoad: (pid: unknown) => unknown, where: string): unknown {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const fail = (msg: string): never => {
    throw new UnsafePickleError(`${where}: ${msg}`);
  };
  const need = (n: number) => {
    if (pos + n > buf.length) fail(`pickle ends early at byte ${pos}`);
  };
  const pop = (): unknown => (stack.length ? stack.pop() : fail(`pickle stack underflow at byte ${pos}`));
  const popMark = (): unknown[] => {
    const items = stack;
    stack = marks.pop() ?? fail(`pickle MARK missing at byte ${pos}`);
    return items;
  };
  const top = (): unknown => (stack.length ? stack[stack.length - 1] : fail(`pickle stack empty at byte ${pos}`));
  const text = (n: number, encoding: BufferEncoding) => {
    need(n);
    const s = buf.toString(encoding, pos, pos + n);
    pos += n;
    return s;
  };
  const bytes = (n: number) => {
    need(n);
    const b = Uint8Array.from(buf.subarray(pos, pos + n));
    pos += n;
    return b;
  };
  const global = (module: string, name: string) => {
    const full = `${module}.${name}`;
    if (full === ORDERED_DICT || full === REBUILD_TENSOR || REBUILD_PARAMETERS.has(full) || full in STORAGE_DTYPES) return new PyGlobal(full);
    return fail(`the pickle names ${full}, which a weights file has no reason to use; refused (loading it in Python could run code)`);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) fail('SETITEMS on something that is not a dict');
    if (items.length % 2) fail('odd number of dict items');
    for (let i = 0; i < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PyGlobal)) return fail('REDUCE of something that is not an allowed global');
    if (!Array.isArray(args)) return fail(`${fn.name} called without an argument tuple`);
    if (fn.name === ORDERED_DICT) {
      if (args.length) fail('OrderedDict with constructor arguments');
      return new Map();
    }
    if (fn.name === REBUILD_TENSOR) {
      const [storage, offset, shape, stride] = args;
      if (!(storage instanceof StorageRef) || !Number.isSafeInteger(offset) || (offset as number) < 0 || !isIntList(shape) || !isIntList(stride) || shape.length !== stride.length) {
        return fail('malformed _rebuild_tensor_v2 arguments');
      }
      let last = offset as number;
      for (let i = 0; i < shape.length; i++) if (shape[i] === 0) last = -1;
      if (last >= 0) for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
      if (last >= storage.numel) fail(`a tensor reaches element ${last} of a ${storage.numel}-element storage`);
      return new TensorRef(storage, offset as number, shape, stride);
    }
    if (REBUILD_PARAMETERS.has(fn.name)) {
      if (!(args[0] instanceof TensorRef)) fail(`${fn.name} of something that is not a tensor`);
      return args[0];
    }
    return fail(`${fn.name} cannot be called`);
  };

  for (;;) {
    need(1);
    const op = buf[pos++];
    switch (op) {
      case 0x80: // PROTO
        need(1);
        if (buf[pos] > 5) fail(`pickle protocol ${buf[pos]} is not supported`);
        pos += 1;
        break;
      case 0x95: // FRAME: only a size hint
        need(8);
        pos += 8;
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail('pickle does not end with exactly one object');
        return stack[0];
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        need(1);
        stack.push(buf.readUInt8(pos));
        pos += 1;
        break;
      case 0x4d: // BININT2
        need(2);
        stack.push(buf.readUInt16LE(pos));
        pos += 2;
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(buf.readInt32LE(pos));
        pos += 4;
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        need(1);
        const n = buf[pos++];
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[pos + i]);
        if (n > 0 && buf[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(buf.readDoubleBE(pos));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        need(4);
        pos += 4;
        stack.push(text(buf.readUInt32LE(pos - 4), 'utf8'));
        break;
      case 0x8c: // SHORT_BINUNICODE
        need(1);
        pos += 1;
        stack.push(text(buf[pos - 1], 'utf8'));
        break;
      case 0x8d: // BINUNICODE8
        need(8);
        pos += 8;
        stack.push(text(Number(buf.readBigUInt64LE(pos - 8)), 'utf8'));
        break;
      case 0x54: // BINSTRING
        need(4);
        pos += 4;
        stack.push(text(buf.readInt32LE(pos - 4), 'latin1'));
        break;
      case 0x55: // SHORT_BINSTRING
        need(1);
        pos += 1;
        stack.push(text(buf[pos - 1], 'latin1'));
        break;
      case 0x42: // BINBYTES
        need(4);
        pos += 4;
        stack.push(bytes(buf.readUInt32LE(pos - 4)));
        break;
      case 0x43: // SHORT_BINBYTES
        need(1);
        pos += 1;
        stack.push(bytes(buf[pos - 1]));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x74: // TUPLE
      case 0x6c: {
        // LIST. (popMark replaces `stack`: take the items before pushing.)
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) fail('APPEND to something that is not a list');
        (list as unknown[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail('APPENDS to something that is not a list');
        (list as unknown[]).push(...items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const dict = new Map();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        need(1);
        memo.set(buf[pos++], top());
        break;
      case 0x72: // LONG_BINPUT
        need(4);
        memo.set(buf.readUInt32LE(pos), top());
        pos += 4;
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const long = op === 0x6a;
        need(long ? 4 : 1);
        const key = long ? buf.readUInt32LE(pos) : buf[pos];
        pos += long ? 4 : 1;
        if (!memo.has(key)) fail(`pickle memo ${key} is not set`);
        stack.push(memo.get(key));
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const end1 = buf.indexOf(0x0a, pos);
        const end2 = end1 < 0 ? -1 : buf.indexOf(0x0a, end1 + 1);
        if (end2 < 0) fail('unterminated GLOBAL');
        const module = buf.toString('utf8', pos, end1);
        const name = buf.toString('utf8', end1 + 1, end2);
        pos = end2 + 1;
        stack.push(global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL without strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x62: {
        // BUILD: instance state. Only OrderedDict (the state dict's _metadata) and tensors get
        // one from torch.save; neither needs it to be read as weights.
        pop();
        const obj = top();
        if (!(obj instanceof Map) && !(obj instanceof TensorRef)) fail('BUILD on an object this reader does not create');
        break;
      }
      default:
        fail(`pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1} is not one torch.save writes; refused`);
    }
  }
}
