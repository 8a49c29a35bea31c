// A small ONNX graph writer: nodes, initializers and a save() that writes the graph as
// protobuf (onnx-proto) with every weight in one external data file beside it. External
// data keeps the protobuf small (no 2 GB limit, no giant in-memory buffer) and lets the
// weights stream to disk as they are added.
import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import onnxProto from 'onnx-proto';
import { AtomicFileSync, writeFileAtomicSync } from '../../util/atomic-write.ts';

const { onnx } = onnxProto;

export const OPSET = 17;

export type AttrValue = number | number[] | string | { ints: number[] } | { float: number };

type ElemType = 'float32' | 'int64' | 'uint8' | 'int8' | 'int32';
const DATA_TYPE: Record<ElemType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7 };

export interface GraphIO {
  name: string;
  type: ElemType;
  /** Symbolic dimensions as strings ("batch"), fixed ones as numbers. */
  dims: (number | string)[];
}

/** Offsets in the data file are aligned so ONNX Runtime can map them directly. */
const ALIGN = 64;

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: GraphIO[] = [];
  private readonly outputs: GraphIO[] = [];
  private counter = 0;
  private readonly shared = new WeakMap<object, string>();
  private readonly sharedValues = new WeakMap<object, unknown>();
  /** The weights, streamed to a temporary file that save() renames into place. */
  private readonly data: AtomicFileSync;
  private dataOffset = 0;
  private readonly dataFileName: string;

  /** `modelPath` is where save() will write the .onnx; weights go to `${modelPath}.data`. */
  constructor(private readonly modelPath: string, private readonly graphName: string) {
    mkdirSync(dirname(modelPath), { recursive: true });
    this.dataFileName = `${basename(modelPath)}.data`;
    this.data = new AtomicFileSync(`${modelPath}.data`);
  }

  input(name: string, type: ElemType, dims: (number | string)[]): string {
    this.inputs.push({ name, type, dims });
    return name;
  }

  output(value: string, name: string, type: ElemType, dims: (number | string)[]): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push({ name, type, dims });
  }

  private fresh(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${this.counter}`;
  }

  /** A float32 weight, written to the external data file now. */
  weight(prefix: string, data: Float32Array, dims: number[]): string {
    return this.external(prefix, data, dims, 'float32');
  }

  /** A uint8 weight (int8 graphs' quantized matrices), written to the external data file now. */
  weightU8(prefix: string, data: Uint8Array, dims: number[]): string {
    return this.external(prefix, data, dims, 'uint8');
  }

  /** An int8 weight, written to the external data file now. */
  weightI8(prefix: string, data: Int8Array, dims: number[]): string {
    return this.external(prefix, data, dims, 'int8');
  }

  private external(prefix: string, data: Float32Array | Uint8Array | Int8Array, dims: number[], type: 'float32' | 'uint8' | 'int8'): string {
    const name = this.fresh(prefix);
    const pad = (ALIGN - (this.dataOffset % ALIGN)) % ALIGN;
    if (pad) {
      this.data.write(new Uint8Array(pad));
      this.dataOffset += pad;
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.data.write(bytes);
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: DATA_TYPE[type],
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: this.dataFileName },
          { key: 'offset', value: String(this.dataOffset) },
          { key: 'length', value: String(bytes.length) },
        ],
      }),
    );
    this.dataOffset += bytes.length;
    return name;
  }

  /** The same weight reused (e.g. an out projection on both attention paths) is stored once. */
  sharedWeight(source: object, prefix: string, make: () => { data: Float32Array; dims: number[] }): string {
    let name = this.shared.get(source);
    if (!name) {
      const { data, dims } = make();
      name = this.weight(prefix, data, dims);
      this.shared.set(source, name);
    }
    return name;
  }

  /** Any value made once per source object (several initializers, a subgraph's output names). */
  sharedValue<T>(source: object, make: () => T): T {
    let v = this.sharedValues.get(source) as T | undefined;
    if (v === undefined) {
      v = make();
      this.sharedValues.set(source, v);
    }
    return v;
  }

  /** A small inline int8 constant (zero points). */
  constI8(values: number[], dims: number[] = []): string {
    const name = this.fresh('i8');
    this.initializers.push(onnx.TensorProto.create({ name, dims, dataType: DATA_TYPE.int8, rawData: new Uint8Array(Int8Array.from(values).buffer) }));
    return name;
  }

  /** A small inline uint8 constant (zero points). */
  constU8(values: number[], dims: number[] = []): string {
    const name = this.fresh('u8');
    this.initializers.push(onnx.TensorProto.create({ name, dims, dataType: DATA_TYPE.uint8, rawData: new Uint8Array(values) }));
    return name;
  }

  /** A small inline constant (shapes, axes, scalars). */
  constI64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('i64');
    const raw = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push(
      onnx.TensorProto.create({ name, dims, dataType: DATA_TYPE.int64, rawData: new Uint8Array(raw.buffer) }),
    );
    return name;
  }

  constF32(values: number[], dims: number[] = []): string {
    const name = this.fresh('f32');
    const raw = new Float32Array(values);
    this.initializers.push(
      onnx.TensorProto.create({ name, dims, dataType: DATA_TYPE.float32, rawData: new Uint8Array(raw.buffer) }),
    );
    return name;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    return this.opN(opType, inputs, 1, attrs, outName ? [outName] : undefined)[0];
  }

  opN(opType: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}, outNames?: string[]): string[] {
    const outputs = outNames ?? Array.from({ length: nOut }, () => this.fresh(opType.toLowerCase()));
    const attribute = Object.entries(attrs).map(([name, v]) => toAttribute(name, v));
    this.nodes.push(onnx.NodeProto.create({ opType, input: inputs, output: outputs, name: this.fresh(`n_${opType}`), attribute }));
    return outputs;
  }

  /**
   * Builds a graph with `body`, which returns the model's doc string, and saves it: the model
   * file and its data file appear together, or (when `body` throws) neither does.
   */
  static write(modelPath: string, graphName: string, body: (g: GraphBuilder) => string): void {
    const g = new GraphBuilder(modelPath, graphName);
    try {
      g.save(body(g));
    } catch (err) {
      g.abandon();
      throw err;
    }
  }

  /** Writes `${modelPath}` and its data file; both appear atomically under their final names. */
  save(docString = ''): void {
    const graph = onnx.GraphProto.create({
      name: this.graphName,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs.map(valueInfo),
      output: this.outputs.map(valueInfo),
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'clip-anomaly-service',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph,
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    // The data file first: a model file on disk always has its weights beside it.
    this.data.commit();
    writeFileAtomicSync(this.modelPath, bytes);
  }

  /** Drops a half-built graph's files. */
  abandon(): void {
    this.data.abandon();
  }
}

function valueInfo(io: GraphIO) {
  return onnx.ValueInfoProto.create({
    name: io.name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[io.type],
        shape: { dim: io.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function toAttribute(name: string, v: AttrValue) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return { name, type: T.INT, i: v };
  }
  if ('ints' in v) return { name, type: T.INTS, ints: v.ints };
  return { name, type: T.FLOAT, f: v.float };
}
