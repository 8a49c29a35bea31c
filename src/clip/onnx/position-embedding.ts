// Resizing the patch-position grid of a vision position embedding for another input size,
// each checkpoint layout by its own library's convention, so a resized checkpoint behaves as
// it would in Python:
// - 'hf' (transformers' interpolate_pos_encoding): F.interpolate(mode='bicubic',
//   align_corners=False) without antialias: source coordinate (dst + 0.5) * in/out - 0.5
//   without clamping, cubic convolution with A = -0.75, source indices clamped to the border;
// - 'open_clip' (open_clip's resize_pos_embed): the same call with antialias=True, i.e.
//   PyTorch's _upsample_bicubic2d_aa: Keys cubic with A = -0.5, widened by the scale factor
//   when shrinking, taps outside the grid dropped and renormalised (resample-bicubic.ts's
//   resizeTaps, checked against PyTorch in test/fixtures/torch-resize.json). It differs from
//   'hf' both ways, most when downsizing.
import type { Tensor32 } from '../types.ts';
import { resizeTaps } from '../../imaging/resample-bicubic.ts';
import { resample2d } from '../../imaging/taps.ts';

export type PositionResize = 'hf' | 'open_clip';

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
export function resizePositionEmbedding(pos: Tensor32, g0: number, g: number, layout: PositionResize = 'hf'): Float32Array {
  const width = pos.shape[1];
  if (pos.shape[0] !== 1 + g0 * g0) {
    throw new Error(`position embedding has ${pos.shape[0]} rows, expected ${1 + g0 * g0} for a ${g0}x${g0} grid`);
  }
  if (g === g0) return pos.data.slice();
  const out = new Float32Array((1 + g * g) * width);
  out.set(pos.data.subarray(0, width), 0);
  if (layout === 'open_clip') {
    // The patch rows are a [g0, g0, W] image with W interleaved channels.
    const taps = resizeTaps(g0, g);
    resample2d(pos.data.subarray(width), taps, taps, { channels: width, out: out.subarray(width) });
    return out;
  }
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
