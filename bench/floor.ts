// The machine's own MatMul floor, measured in the same run as the figures it divides: a 2048³
// fp32 MatMul and an int8 MatMulInteger (uint8 × int8, as dynamic quantization feeds it) of the
// same size, each one ONNX Runtime session with the workers' thread count. Run on its own
// (`node --import tsx bench/floor.ts [rounds]`) it measures the two floors in alternation and
// prints their ratio: how much faster int8 GEMMs can be than fp32 ones on this CPU.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { time, type Figure } from './figures.ts';

const { onnx } = onnxProto;
const N = 2048;
const TYPE = { float: 1, uint8: 2, int8: 3, int32: 6 } as const;

function model(op: 'MatMul' | 'MatMulInteger', a: number, b: number, out: number): Uint8Array {
  const io = (name: string, elemType: number) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: [{ dimValue: N }, { dimValue: N }] } } } });
  const graph = onnx.GraphProto.create({
    name: `floor_${op}`,
    node: [onnx.NodeProto.create({ opType: op, input: ['a', 'b'], output: ['c'], name: 'mm' })],
    input: [io('a', a), io('b', b)],
    output: [io('c', out)],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, producerName: 'bench', opsetImport: [{ domain: '', version: 17 }], graph })).finish();
}

export interface Floors {
  fp32: Figure;
  int8: Figure;
  /** Multiply-adds per millisecond at each floor. */
  fp32MacsPerMs: number;
  int8MacsPerMs: number;
}

/**
 * Both floor sessions, kept open: on a shared machine the load moves during a run, so the floor
 * is measured again right before each group of figures (`measure`) and each group is divided by
 * its own.
 */
export class FloorSessions {
  private constructor(
    private readonly dir: string,
    private readonly fp32: ort.InferenceSession,
    private readonly int8: ort.InferenceSession,
  ) {}

  static async open(threads: number): Promise<FloorSessions> {
    const dir = mkdtempSync(join(tmpdir(), 'bench-floor-'));
    // No intra-op spinning, as the service's sessions (INTRA_OP_SPINNING=0): idle spinning
    // threads of these sessions would take the cores from the figures measured after them.
    const options: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      extra: { 'session.intra_op.allow_spinning': '0' },
    };
    writeFileSync(join(dir, 'fp32.onnx'), model('MatMul', TYPE.float, TYPE.float, TYPE.float));
    writeFileSync(join(dir, 'int8.onnx'), model('MatMulInteger', TYPE.uint8, TYPE.int8, TYPE.int32));
    return new FloorSessions(dir, await ort.InferenceSession.create(join(dir, 'fp32.onnx'), options), await ort.InferenceSession.create(join(dir, 'int8.onnx'), options));
  }

  private readonly fa = new ort.Tensor('float32', Float32Array.from({ length: N * N }, (_, i) => Math.sin(i)), [N, N]);
  private readonly fb = new ort.Tensor('float32', Float32Array.from({ length: N * N }, (_, i) => Math.cos(i)), [N, N]);
  private readonly qa = new ort.Tensor('uint8', Uint8Array.from({ length: N * N }, (_, i) => (i * 131) & 255), [N, N]);
  private readonly qb = new ort.Tensor('int8', Int8Array.from({ length: N * N }, (_, i) => ((i * 71) & 255) - 128), [N, N]);

  async measure(runs: number, label = ''): Promise<Floors> {
    const f = await time(`floor fp32 MatMul 2048³${label}`, runs, () => this.fp32.run({ a: this.fa, b: this.fb }));
    const q = await time(`floor int8 MatMulInteger 2048³${label}`, runs, () => this.int8.run({ a: this.qa, b: this.qb }));
    const macs = N * N * N;
    f.note = `${((2 * macs) / f.median_ms / 1e6).toFixed(0)} GFLOP/s`;
    q.note = `${((2 * macs) / q.median_ms / 1e6).toFixed(0)} GOP/s`;
    return { fp32: f, int8: q, fp32MacsPerMs: macs / f.median_ms, int8MacsPerMs: macs / q.median_ms };
  }

  async close(): Promise<void> {
    await this.fp32.release();
    await this.int8.release();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function measureFloors(threads: number, runs: number): Promise<Floors> {
  const sessions = await FloorSessions.open(threads);
  try {
    return await sessions.measure(runs);
  } finally {
    await sessions.close();
  }
}

/** The figure with its floor: `macs` at the floor's rate. */
export function withFloor(figure: Figure, macs: number, macsPerMs: number): Figure {
  const floor = macs / macsPerMs;
  return { ...figure, floor_ms: Math.round(floor * 100) / 100, ratio_to_floor: Math.round((figure.median_ms / floor) * 100) / 100 };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const sessions = await FloorSessions.open(availableParallelism());
  const ratios: number[] = [];
  for (let round = 0; round < Number(process.argv[2] ?? 8); round++) {
    const f = await sessions.measure(5);
    ratios.push(f.fp32.median_ms / f.int8.median_ms);
    console.log(`fp32 ${f.fp32.median_ms.toFixed(1)} ms (${f.fp32.note}), int8 ${f.int8.median_ms.toFixed(1)} ms (${f.int8.note}): int8 ${ratios.at(-1)!.toFixed(2)}× faster`);
  }
  ratios.sort((a, b) => a - b);
  console.log(`int8 floor / fp32 floor: median ${ratios[ratios.length >> 1].toFixed(2)}×, range ${ratios[0].toFixed(2)}–${ratios.at(-1)!.toFixed(2)}×`);
  await sessions.close();
}
