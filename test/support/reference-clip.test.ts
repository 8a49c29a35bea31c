// Self-test of the reference CLIP forward: helpers against hand-computed values, and the
// structural properties (causal mask, pooling, dense-path wiring) on tiny random weights.
import { describe, expect, it } from 'vitest';
import type { Block, ClipWeights, Tensor32 } from '../../src/clip/types.ts';
import {
  bicubicAxis,
  denseAttention,
  erf,
  erfc,
  gelu,
  layerNorm,
  matmul,
  quickGelu,
  referenceImageForward,
  referenceTextEmbeds,
  referenceTextHidden,
  resizePositionEmbedding,
  softmax,
  transformerBlock,
} from './reference-clip.ts';
import { centredLcg } from './lcg.ts';

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(tol);
}

describe('scalar functions', () => {
  it('erf matches tabulated values to ~1e-15', () => {
    // math.erf (C libm) values.
    const table: [number, number][] = [
      [0.001, 0.0011283787909692365],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [-1, -0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [5, 0.9999999999984626],
    ];
    for (const [x, want] of table) expect(Math.abs(erf(x) - want)).toBeLessThan(2e-15);
    expect(erf(0)).toBe(0);
  });

  it('gelu and quick_gelu', () => {
    expect(Math.abs(gelu(1) - 0.8413447460685429)).toBeLessThan(1e-15);
    // In the far negative tail gelu is tiny; relative accuracy still holds there.
    expect(Math.abs(gelu(-4) / -0.00012668496733247986 - 1)).toBeLessThan(1e-10);
    expect(Math.abs(gelu(-8) / -4.9767684594174555e-15 - 1)).toBeLessThan(1e-10);
    expect(Math.abs(erfc(5) / 1.5374597944280349e-12 - 1)).toBeLessThan(1e-12);
    // 1 / (1 + e^-1.702) and -1 / (1 + e^1.702)
    expect(Math.abs(quickGelu(1) - 0.8457957659328212)).toBeLessThan(1e-15);
    expect(Math.abs(quickGelu(-1) - -0.1542042340671787)).toBeLessThan(1e-15);
  });
});

describe('tensor helpers', () => {
  it('layer norm uses the biased variance', () => {
    // [1, 2, 3, 4]: mean 2.5, biased variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    const s = 1 / Math.sqrt(1.25);
    const out = layerNorm([1, 2, 3, 4, 6, 6, 6, 6], 2, 4, [1, 1, 2, 1], [0, 0, 0, 1], 0);
    expectClose(out.subarray(0, 4), [-1.5 * s, -0.5 * s, 2 * 0.5 * s, 1.5 * s + 1]);
    // eps inside the square root: sqrt(1.25 + 2.75) = 2.
    expectClose(layerNorm([1, 2, 3, 4], 1, 4, [1, 1, 1, 1], [0, 0, 0, 0], 2.75), [-0.75, -0.25, 0.25, 0.75]);
  });

  it('softmax is row-wise and stable', () => {
    expectClose(softmax([0, Math.log(2), Math.log(3), 1000, 1000, 1000], 2, 3), [1 / 6, 2 / 6, 3 / 6, 1 / 3, 1 / 3, 1 / 3]);
  });

  it('matmul', () => {
    expectClose(matmul([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], 2, 3, 2), [58, 64, 139, 154]);
  });
});

describe('bicubic position-embedding resize', () => {
  it('is the identity at the same grid size', () => {
    const g = 3;
    const data = Float32Array.from({ length: (1 + g * g) * 2 }, (_, i) => Math.sin(i * 1.7));
    expect(Array.from(resizePositionEmbedding({ shape: [1 + g * g, 2], data }, g, g))).toEqual(Array.from(data));
  });

  it('upsamples a 2-wide ramp to 4 as PyTorch does (A = -0.75, clamped taps)', () => {
    // F.interpolate([[[[0,1],[0,1]]]], size=(4,4), mode='bicubic', align_corners=False).
    // scale = 2/4; src = (i + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25.
    // Weights for t: [k(t+1), k(t), k(1-t), k(2-t)], k(x) = 1.25x³ - 2.25x² + 1 (|x| ≤ 1),
    // k(x) = -0.75x³ + 3.75x² - 6x + 3 (1 < |x| < 2):
    //   t = 0.75: k(1.75) = -0.03515625, k(0.75) = 0.26171875, k(0.25) = 0.87890625, k(1.25) = -0.10546875
    //   t = 0.25: the same four in reverse order.
    // i = 0: floor = -1, taps -2..1 clamp to 0,0,0,1 → values 0,0,0,1 → k(1.25) = -0.10546875
    // i = 1: floor = 0, t = 0.25, weights [-0.10546875, 0.87890625, 0.26171875, -0.03515625],
    //        taps -1..2 clamp to 0,0,1,1 → values 0,0,1,1 → 0.26171875 - 0.03515625 = 0.2265625
    // i = 2, 3 by symmetry: 1 - 0.2265625 = 0.7734375, 1 + 0.10546875 = 1.10546875.
    // (-0.0703125 would be k(1.25) with A = -0.5, PIL's kernel; ONNX Runtime's Resize(cubic,
    // cubic_coeff_a=-0.75, half_pixel) gives -0.10546875 too.)
    const pos: Tensor32 = { shape: [5, 1], data: new Float32Array([7, 0, 1, 0, 1]) };
    const out = resizePositionEmbedding(pos, 2, 4);
    const row = [-0.10546875, 0.2265625, 0.7734375, 1.10546875];
    expectClose(out, [7, ...row, ...row, ...row, ...row], 0);
    const axis = bicubicAxis(2, 4);
    expectClose(axis.weights.subarray(0, 4), [-0.03515625, 0.26171875, 0.87890625, -0.10546875], 0);
  });

  it('keeps a constant grid constant (weights sum to 1) when downsampling', () => {
    const data = new Float32Array(1 + 25).fill(0.5);
    expectClose(resizePositionEmbedding({ shape: [26, 1], data }, 5, 3).subarray(1), new Array(9).fill(0.5), 1e-14);
  });
});

// ----- tiny random weights --------------------------------------------------------------------

function tinyWeights(): ClipWeights {
  const rand = centredLcg(42);
  const tensor = (shape: number[], scale = 0.5, offset = 0): Tensor32 => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * rand()),
  });
  const block = (width: number, mlp: number): Block => ({
    ln1: { weight: tensor([width], 0.2, 1), bias: tensor([width], 0.2) },
    q: { weight: tensor([width, width]), bias: tensor([width], 0.2) },
    k: { weight: tensor([width, width]), bias: tensor([width], 0.2) },
    v: { weight: tensor([width, width]), bias: tensor([width], 0.2) },
    out: { weight: tensor([width, width]), bias: tensor([width], 0.2) },
    ln2: { weight: tensor([width], 0.2, 1), bias: tensor([width], 0.2) },
    fc1: { weight: tensor([mlp, width]), bias: tensor([mlp], 0.2) },
    fc2: { weight: tensor([width, mlp]), bias: tensor([width], 0.2) },
  });
  const vision = { width: 8, layers: 3, heads: 2, mlpWidth: 16, patchSize: 2, imageSize: 4, layerNormEps: 1e-5, act: 'gelu' as const };
  const text = {
    width: 8, layers: 2, heads: 2, mlpWidth: 16, contextLength: 6, vocabSize: 10,
    layerNormEps: 1e-5, act: 'quick_gelu' as const, eosTokenId: 9, bosTokenId: 8,
  };
  const dim = 4;
  return {
    config: { vision, text, projectionDim: dim, logitScale: 100 },
    vision: {
      patchEmbed: tensor([8, 3, 2, 2]),
      classEmbed: tensor([8]),
      posEmbed: tensor([1 + 4, 8]),
      lnPre: { weight: tensor([8], 0.2, 1), bias: tensor([8], 0.2) },
      blocks: [block(8, 16), block(8, 16), block(8, 16)],
      lnPost: { weight: tensor([8], 0.2, 1), bias: tensor([8], 0.2) },
      proj: tensor([dim, 8]),
    },
    text: {
      tokenEmbed: tensor([10, 8]),
      posEmbed: tensor([6, 8]),
      blocks: [block(8, 16), block(8, 16)],
      lnFinal: { weight: tensor([8], 0.2, 1), bias: tensor([8], 0.2) },
      proj: tensor([dim, 8]),
    },
  };
}

describe('text tower', () => {
  const w = tinyWeights();

  it('is causal: tokens after position t do not change the hidden state at t', () => {
    const a = referenceTextHidden(w, [8, 5, 3, 7, 2, 9]);
    const b = referenceTextHidden(w, [8, 5, 3, 1, 6, 4]);
    const width = 8;
    expect(Array.from(a.subarray(0, 3 * width))).toEqual(Array.from(b.subarray(0, 3 * width)));
    expect(Array.from(a.subarray(3 * width, 4 * width))).not.toEqual(Array.from(b.subarray(3 * width, 4 * width)));
  });

  it('pools at the first highest id, so padding with EOT after it changes nothing', () => {
    const [padded, other] = referenceTextEmbeds(w, [[8, 5, 9, 9, 9, 9], [8, 5, 9, 0, 3, 1]], 6);
    expectClose(padded, other, 0);
    const flat = referenceTextEmbeds(w, BigInt64Array.from([8n, 5n, 9n, 9n, 9n, 9n]), 6);
    expectClose(flat[0], padded, 0);
    expect(padded.length).toBe(4);
  });
});

describe('image tower', () => {
  const w = tinyWeights();
  const rand = centredLcg(7);
  const pixels = Float32Array.from({ length: 2 * 3 * 4 * 4 }, () => rand());

  it('gives per-image embeds and [L, N, dim] dense features', () => {
    const out = referenceImageForward(w, pixels, 2, { imageSize: 4, denseLayers: [1, 3], denseStart: 2, denseAttention: 'vv' });
    expect(out.imageEmbeds.map((e) => e.length)).toEqual([4, 4]);
    expect(out.dense.map((d) => d.length)).toEqual([2 * 4 * 4, 2 * 4 * 4]);
    // Images are independent of each other.
    const single = referenceImageForward(w, pixels.subarray(48), 1, { imageSize: 4, denseLayers: [1, 3], denseStart: 2, denseAttention: 'vv' });
    expectClose(single.dense[0], out.dense[1], 0);
    expectClose(single.imageEmbeds[0], out.imageEmbeds[1], 0);
  });

  it('dense path: d_l = d_{l-1} + OutProj(attn of LN1(x_{l-1})) from the original path', () => {
    // Rebuild the features of layer 3 with denseStart 2 by hand from the exported pieces.
    const cfg = w.config.vision;
    const tokens = 5;
    for (const mode of ['vv', 'qqkk'] as const) {
      const out = referenceImageForward(w, pixels.subarray(0, 48), 1, { imageSize: 4, denseLayers: [1, 3], denseStart: 2, denseAttention: mode });
      // The original path x_0..x_3, then the dense path from d_1 = x_1.
      const x: Float64Array[] = [referenceTokensLnPre(w, pixels.subarray(0, 48))];
      for (let l = 1; l <= 3; l++) x.push(transformerBlock(x[l - 1], tokens, w.vision.blocks[l - 1], cfg.heads, cfg.layerNormEps, cfg.act, false));
      let d = x[1];
      for (let l = 2; l <= 3; l++) {
        const blk = w.vision.blocks[l - 1];
        const h = layerNorm(x[l - 1], tokens, 8, blk.ln1.weight.data, blk.ln1.bias.data, cfg.layerNormEps);
        const attn = denseAttention(h, tokens, blk, cfg.heads, mode);
        d = d.map((v, i) => v + attn[i]);
      }
      const features = (t: Float64Array) => {
        const n = layerNorm(t, tokens, 8, w.vision.lnPost.weight.data, w.vision.lnPost.bias.data, cfg.layerNormEps).subarray(8);
        return matmul(n, transpose(w.vision.proj.data, 4, 8), 4, 8, 4);
      };
      expectClose(out.dense[0].subarray(0, 16), features(x[1]), 1e-12);
      expectClose(out.dense[0].subarray(16), features(d), 1e-12);
      expect(Math.abs(out.dense[0][16] - features(x[3])[0])).toBeGreaterThan(1e-6); // the dense path differs
    }
  });

  it('runs at another resolution through the resized position grid', () => {
    const big = Float32Array.from({ length: 3 * 6 * 6 }, () => rand());
    const out = referenceImageForward(w, big, 1, { imageSize: 6, denseLayers: [3], denseStart: 3, denseAttention: 'qqkk' });
    expect(out.dense[0].length).toBe(9 * 4);
    expect(out.dense[0].every(Number.isFinite)).toBe(true);
  });
});

function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** x_0 = ln_pre(class + patches + pos) for a 4×4 image with patch 2, written out independently. */
function referenceTokensLnPre(w: ClipWeights, pixels: Float32Array): Float64Array {
  const width = 8;
  const x = new Float64Array(5 * width);
  for (let c = 0; c < width; c++) x[c] = w.vision.classEmbed.data[c] + w.vision.posEmbed.data[c];
  for (let p = 0; p < 4; p++) {
    const py = Math.floor(p / 2);
    const px = p % 2;
    for (let o = 0; o < width; o++) {
      let sum = w.vision.posEmbed.data[(1 + p) * width + o];
      for (let ch = 0; ch < 3; ch++)
        for (let ky = 0; ky < 2; ky++)
          for (let kx = 0; kx < 2; kx++)
            sum += w.vision.patchEmbed.data[o * 12 + ch * 4 + ky * 2 + kx] * pixels[ch * 16 + (py * 2 + ky) * 4 + px * 2 + kx];
      x[(1 + p) * width + o] = sum;
    }
  }
  const eps = w.config.vision.layerNormEps;
  return layerNorm(x, 5, width, w.vision.lnPre.weight.data, w.vision.lnPre.bias.data, eps);
}
