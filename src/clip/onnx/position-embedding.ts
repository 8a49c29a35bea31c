// Resizing the patch-position grid of a vision position embedding for another input size.
// Follows PyTorch's F.interpolate(mode='bicubic', align_corners=False): source coordinate
// (dst + 0.5) * in/out - 0.5 without clamping, cubic convolution with A = -0.75, and source
// indices clamped to the border. That is what open_clip and HF use, so a resized checkpoint
// behaves as it would in Python.
import type { Tensor32 } from '../types.ts';

const A = -0.75;

function cubicWeights(t: number): [number, number, number, number] {
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** Interpolation taps (clamped source indices and weights) for each output position. */
function taps(inSize: number, outSize: number): { idx: Int32Array; w: Float64Array } {
  const idx = new Int32Array(outSize * 4);
  const w = new Float64Array(outSize * 4);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const real = scale * (o + 0.5) - 0.5;
    const base = Math.floor(real);
    const ws = cubicWeights(real - base);
    for (let k = 0; k < 4; k++) {
      idx[o * 4 + k] = Math.min(Math.max(base - 1 + k, 0), inSize - 1);
      w[o * 4 + k] = ws[k];
    }
  }
  return { idx, w };
}

/**
 * pos: [1 + g0*g0, W] (class row first). Returns [1 + g*g, W]; the class row is kept as is.
 * The identity size returns the input unchanged.
 */
export function resizePositionEmbedding(pos: Tensor32, g0: number, g: number): Float32Array {
  const width = pos.shape[1];
  if (pos.shape[0] !== 1 + g0 * g0) {
    throw new Error(`position embedding has ${pos.shape[0]} rows, expected ${1 + g0 * g0} for a ${g0}x${g0} grid`);
  }
  if (g === g0) return pos.data.slice();
  const out = new Float32Array((1 + g * g) * width);
  out.set(pos.data.subarray(0, width), 0);
  const { idx, w } = taps(g0, g);
  const rowTmp = new Float64Array(4 * width);
  for (let oy = 0; oy < g; oy++) {
    for (let ox = 0; ox < g; ox++) {
      // Interpolate along x in each of the 4 source rows, then along y.
      rowTmp.fill(0);
      for (let ky = 0; ky < 4; ky++) {
        const sy = idx[oy * 4 + ky];
        for (let kx = 0; kx < 4; kx++) {
          const sx = idx[ox * 4 + kx];
          const wx = w[ox * 4 + kx];
          const src = (1 + sy * g0 + sx) * width;
          for (let c = 0; c < width; c++) rowTmp[ky * width + c] += wx * pos.data[src + c];
        }
      }
      const dst = (1 + oy * g + ox) * width;
      for (let c = 0; c < width; c++) {
        let v = 0;
        for (let ky = 0; ky < 4; ky++) v += w[oy * 4 + ky] * rowTmp[ky * width + c];
        out[dst + c] = v;
      }
    }
  }
  return out;
}
