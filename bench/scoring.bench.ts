// `node --import tsx bench/scoring.bench.ts [--runs 10] [--quick]`: the dense-frequency branch
// scoring (frequency split, FSAM, GSCM, per-branch probabilities; 3 layers) on vit-b-16-sized
// features (14×14 × 512) and ViT-L/14-at-518-sized ones (37×37 × 768), in JavaScript
// (branches.ts, the reference) and as the ONNX scoring graph (scoring-graph.ts, what the worker
// runs). Prints the load average: the machine may be shared.
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultBranchSettings, gridBranchMaps, uniformBranchText } from '../src/methods/dense-frequency/branches.ts';
import { graphBranchMaps } from '../src/methods/dense-frequency/scoring-graph.ts';
import { scoringSession } from '../src/dev/scoring-session.ts';
import { machineLine, report, time, type Figure } from './figures.ts';
import { FloorSessions, withFloor } from './floor.ts';

/** Spatially smooth features plus noise, like dense CLIP features (a random field has no layout). */
export function syntheticGrid(layers: number, side: number, dim: number, seed = 1) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const data = new Float32Array(layers * side * side * dim);
  const phase = Float32Array.from({ length: dim * 2 }, rand);
  for (let l = 0; l < layers; l++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const base = ((l * side + y) * side + x) * dim;
        for (let c = 0; c < dim; c++) data[base + c] = Math.sin(0.3 * y + 3 * phase[c]) + Math.cos(0.25 * x + 3 * phase[dim + c]) + 0.7 * rand();
      }
    }
  }
  const vec = () => Float32Array.from({ length: dim }, rand);
  return { grid: { data, layers, gridH: side, gridW: side, dim }, text: uniformBranchText({ normal: vec(), abnormal: vec() }) };
}

/** Multiply-adds of the graph's three layers: GSCM's two N×N products, FSAM's banded ones, the frequency split. */
export function scoringMacs(side: number, dim: number, layers = 3, k = defaultBranchSettings.fsam.k): number {
  const n = side * side;
  return layers * (2 * n * n * dim + 2 * n * k * side * dim + n * 2 * side * dim);
}

export async function scoringFigures(opts: { runs: number; quick?: boolean; javascript?: boolean }): Promise<Figure[]> {
  const figures: Figure[] = [];
  const { infer, close } = await scoringSession();
  const shapes: Array<[string, number, number]> = [['14x14x512', 14, 512], ['37x37x768', 37, 768]];
  try {
    for (const [label, side, dim] of shapes) {
      const { grid, text } = syntheticGrid(3, side, dim);
      const runs = side > 20 && opts.quick ? Math.max(2, opts.runs >> 1) : opts.runs;
      figures.push(await time(`scoring graph 3 layers ${label}`, runs, () => graphBranchMaps(infer, grid, text, defaultBranchSettings)));
      if (opts.javascript !== false && !(opts.quick && side > 20)) {
        figures.push(await time(`scoring javascript 3 layers ${label}`, Math.max(2, runs >> 1), () => gridBranchMaps(grid, text, defaultBranchSettings)));
      }
    }
  } finally {
    await close();
  }
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, quick: { type: 'boolean', default: false } } });
  console.log(machineLine());
  // The fp32 MatMul floor right before and right after, the mean of both as this run's floor.
  const floors = await FloorSessions.open(availableParallelism());
  const before = await floors.measure(3, ' (before)');
  const figures = await scoringFigures({ runs: Math.max(2, Number(values.runs)), quick: values.quick });
  const after = await floors.measure(3, ' (after)');
  await floors.close();
  const rate = (before.fp32MacsPerMs + after.fp32MacsPerMs) / 2;
  report([before.fp32, after.fp32, ...figures.map((f) => withFloor(f, scoringMacs(f.name.includes('37x37') ? 37 : 14, f.name.includes('37x37') ? 768 : 512), rate))]);
  console.log(machineLine());
}
