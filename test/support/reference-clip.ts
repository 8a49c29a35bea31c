// Reference forward of CLIP in plain TypeScript: straight loops, Float64 math throughout,
// written to be read rather than to be fast. The ONNX graphs are checked against it, so every
// step follows the maths of method.md §1-§2 literally; nothing here is shared with the graph
// builder on purpose.
import type {
  Activation,
  Block,
  ClipWeights,
  ImageGraphOptions,
  Linear,
  Tensor32,
} from '../../src/clip/types.ts';

// ---------------------------------------------------------------------------------------------
// Scalar functions
// ---------------------------------------------------------------------------------------------

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/**
 * erf to ~1e-15 absolute. For |x| < 6 it uses the everywhere-convergent series
 *   erf(x) = 2/√π · e^{-x²} · Σ_{n≥0} 2ⁿ x^{2n+1} / (1·3·5···(2n+1))
 * whose terms are all of one sign, so there is no cancellation (unlike the plain Taylor
 * series). For |x| ≥ 6, 1 - erf(|x|) < 3e-17, below double resolution.
 * Abramowitz-Stegun 7.1.26 (1.5e-7 absolute) is not used: gelu(x) for x ≲ -4 is ~1e-4 in
 * size, so that error becomes ~1e-3 relative there and would fail a 1e-4 relative check.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  const x2 = ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  const value = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
  return x < 0 ? -value : value;
}

/**
 * erfc(z) = 1 - erf(z) without the cancellation of 1 - erf for large z: for z ≥ 2 the
 * continued fraction erfc(z) = e^{-z²}/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))),
 * evaluated backwards from a fixed depth (ample for z ≥ 2).
 */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 2) return 1 - erf(z);
  let tail = z;
  for (let n = 120; n >= 1; n--) tail = z + n / 2 / tail;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / tail;
}

/**
 * Exact (erf-based) GELU, as torch.nn.functional.gelu with approximate='none':
 * 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(-x/√2), the latter keeping relative precision in the
 * far negative tail where the value is tiny.
 */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x / Math.SQRT2);
}

/** OpenAI CLIP's activation: x · sigmoid(1.702 x). */
export function quickGelu(x: number): number {
  return x / (1 + Math.exp(-1.702 * x));
}

export function activationFunction(act: Activation): (x: number) => number {
  if (act === 'quick_gelu') return quickGelu;
  if (act === 'gelu') return gelu;
  throw new Error(`unknown activation ${String(act)}`);
}

// ---------------------------------------------------------------------------------------------
// Tensor helpers (row-major, Float64 results)
// ---------------------------------------------------------------------------------------------

/** Row-wise layer norm of x [rows, dim] with the biased variance, as torch.nn.LayerNorm. */
export function layerNorm(
  x: ArrayLike<number>,
  rows: number,
  dim: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[base + i];
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) {
      const d = x[base + i] - mean;
      variance += d * d;
    }
    variance /= dim;
    const invStd = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) out[base + i] = (x[base + i] - mean) * invStd * gamma[i] + beta[i];
  }
  return out;
}

/** a [m, k] · b [k, n] → [m, n]. */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  if (a.length !== m * k || b.length !== k * n) throw new Error(`matmul: sizes ${a.length}, ${b.length} do not fit ${m}x${k}x${n}`);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
      out[i * n + j] = sum;
    }
  }
  return out;
}

/** torch.nn.Linear on each row: x [rows, in] → x · Wᵀ + b, W [out, in]. */
export function linear(x: ArrayLike<number>, rows: number, layer: Linear): Float64Array {
  const [outDim, inDim] = layer.weight.shape;
  if (layer.weight.shape.length !== 2 || x.length !== rows * inDim) {
    throw new Error(`linear: input of ${x.length} values does not fit ${rows}x${inDim} for weight [${layer.weight.shape}]`);
  }
  const w = layer.weight.data;
  const b = layer.bias?.data;
  const out = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let sum = b ? b[o] : 0;
      for (let i = 0; i < inDim; i++) sum += w[o * inDim + i] * x[r * inDim + i];
      out[r * outDim + o] = sum;
    }
  }
  return out;
}

/** Row-wise softmax of x [rows, cols] (max subtracted first, which does not change it). */
export function softmax(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const e = Math.exp(x[r * cols + c] - max);
      out[r * cols + c] = e;
      sum += e;
    }
    for (let c = 0; c < cols; c++) out[r * cols + c] /= sum;
  }
  return out;
}

function toFloat64(t: Tensor32): Float64Array {
  return Float64Array.from(t.data);
}

function expectShape(t: Tensor32, shape: number[], what: string): void {
  const ok = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  if (!ok || t.data.length !== shape.reduce((a, b) => a * b, 1)) {
    throw new Error(`${what}: expected shape [${shape}], got [${t.shape}] with ${t.data.length} values`);
  }
}

// ---------------------------------------------------------------------------------------------
// Bicubic resize of the position-embedding grid
// ---------------------------------------------------------------------------------------------

/** The Keys cubic-convolution coefficient PyTorch uses for mode='bicubic' (antialias=False). */
export const BICUBIC_A = -0.75;

/**
 * The four tap weights for taps at floor(src)-1 .. floor(src)+2, t = src - floor(src) in [0, 1):
 *   [k(t+1), k(t), k(1-t), k(2-t)] with the Keys kernel
 *   k(x) = ((A+2)x - (A+3))x² + 1          for |x| ≤ 1
 *   k(x) = ((A x - 5A) x + 8A) x - 4A       for 1 < |x| < 2
 * (PyTorch's get_cubic_upsample_coefficients; they sum to 1 for every t.)
 */
export function bicubicTapWeights(t: number, a = BICUBIC_A): [number, number, number, number] {
  const near = (x: number) => ((a + 2) * x - (a + 3)) * x * x + 1;
  const far = (x: number) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * Taps and weights along one axis for resizing `inSize` samples to `outSize`, as PyTorch's
 * F.interpolate(mode='bicubic', align_corners=False, antialias=False) given `size=`:
 *   scale = inSize / outSize
 *   src   = (i + 0.5) · scale - 0.5          (NOT clamped at 0 for cubic, unlike linear)
 *   i0    = floor(src), t = src - i0
 *   taps  = clamp(i0 - 1 .. i0 + 2, 0, inSize - 1)   (border replicate)
 */
export function bicubicAxis(inSize: number, outSize: number): { taps: Int32Array; weights: Float64Array } {
  const taps = new Int32Array(outSize * 4);
  const weights = new Float64Array(outSize * 4);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = (i + 0.5) * scale - 0.5;
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const t = Math.min(Math.max(src - i0, 0), 1);
    const w = bicubicTapWeights(t);
    for (let j = 0; j < 4; j++) {
      taps[i * 4 + j] = Math.min(Math.max(i0 - 1 + j, 0), inSize - 1);
      weights[i * 4 + j] = w[j];
    }
  }
  return { taps, weights };
}

/**
 * Resizes a position embedding pos [1 + g0·g0, W] (class row first, then the patch grid
 * row-major) to [1 + g·g, W]. The class row is copied unchanged. The grid is treated as a
 * W-channel g0×g0 image and resized exactly as
 *   F.interpolate(grid.reshape(1, g0, g0, W).permute(0, 3, 1, 2), size=(g, g),
 *                 mode='bicubic', align_corners=False)            # antialias=False
 * i.e. separable Keys cubic convolution with A = -0.75 (see bicubicAxis for the source
 * index, the taps and the border clamping):
 *   out[y, x] = Σ_{i,j<4} wy[y,i] · wx[x,j] · in[tapY[y,i], tapX[x,j]]
 * This is what Hugging Face's `interpolate_pos_encoding` does with `size=`; it is NOT
 * PIL's bicubic (A = -0.5) nor PyTorch's antialias=True path (A = -0.5, renormalised
 * weights, no clamping), which open_clip's resize_pos_embed may use when downsampling.
 * The same as ONNX Resize(mode='cubic', cubic_coeff_a=-0.75,
 * coordinate_transformation_mode='half_pixel', exclude_outside=0) given output sizes.
 * When g === g0 every src is an integer, t = 0, weights are [0, 1, 0, 0]: the identity.
 */
export function resizePositionEmbedding(pos: Tensor32, g0: number, g: number): Float64Array {
  if (pos.shape.length !== 2 || pos.shape[0] !== 1 + g0 * g0) {
    throw new Error(`resizePositionEmbedding: expected [${1 + g0 * g0}, W], got [${pos.shape}]`);
  }
  const width = pos.shape[1];
  const src = pos.data;
  const out = new Float64Array((1 + g * g) * width);
  for (let c = 0; c < width; c++) out[c] = src[c];
  const ax = bicubicAxis(g0, g); // the same along y and x: the grid is square
  for (let y = 0; y < g; y++) {
    for (let x = 0; x < g; x++) {
      const dst = (1 + y * g + x) * width;
      for (let i = 0; i < 4; i++) {
        const wy = ax.weights[y * 4 + i];
        const rowTap = ax.taps[y * 4 + i];
        for (let j = 0; j < 4; j++) {
          const w = wy * ax.weights[x * 4 + j];
          const from = (1 + rowTap * g0 + ax.taps[x * 4 + j]) * width;
          for (let c = 0; c < width; c++) out[dst + c] += w * src[from + c];
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Transformer
// ---------------------------------------------------------------------------------------------

/**
 * Standard multi-head self-attention of h [T, W] (h already layer-normed), heads taking
 * consecutive slices of headDim columns; causal: token i attends to tokens 0..i only.
 * Returns the out projection (with bias) of the concatenated heads, [T, W].
 */
export function selfAttention(h: Float64Array, tokens: number, block: Block, heads: number, causal: boolean): Float64Array {
  const q = linear(h, tokens, block.q);
  const k = linear(h, tokens, block.k);
  const v = linear(h, tokens, block.v);
  const width = q.length / tokens;
  const headDim = width / heads;
  if (!Number.isInteger(headDim)) throw new Error(`width ${width} is not divisible by ${heads} heads`);
  const scale = 1 / Math.sqrt(headDim);
  const merged = new Float64Array(tokens * width);
  const scores = new Float64Array(tokens);
  for (let head = 0; head < heads; head++) {
    const off = head * headDim;
    for (let i = 0; i < tokens; i++) {
      const visible = causal ? i + 1 : tokens;
      for (let j = 0; j < visible; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[i * width + off + d] * k[j * width + off + d];
        scores[j] = dot * scale;
      }
      const p = softmax(scores.subarray(0, visible), 1, visible);
      for (let j = 0; j < visible; j++) {
        for (let d = 0; d < headDim; d++) merged[i * width + off + d] += p[j] * v[j * width + off + d];
      }
    }
  }
  return linear(merged, tokens, block.out);
}

/** softmax(A Aᵀ · scale) for one head's slice A [T, headDim] of a [T, width] matrix. */
function selfAffinity(a: Float64Array, tokens: number, width: number, off: number, headDim: number, scale: number): Float64Array {
  const logits = new Float64Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) {
    for (let j = 0; j < tokens; j++) {
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += a[i * width + off + d] * a[j * width + off + d];
      logits[i * tokens + j] = dot * scale;
    }
  }
  return softmax(logits, tokens, tokens);
}

/**
 * The dense path's attention (method.md §2) on h = LN1(x) of the ORIGINAL path, [T, W]:
 * per head, 'vv': softmax(V Vᵀ·s) V; 'qqkk': (softmax(Q Qᵀ·s) + softmax(K Kᵀ·s)) V, s = 1/√headDim.
 * Returns the out projection (with bias) of the concatenated heads, [T, W].
 */
export function denseAttention(h: Float64Array, tokens: number, block: Block, heads: number, mode: 'vv' | 'qqkk'): Float64Array {
  const v = linear(h, tokens, block.v);
  const q = mode === 'qqkk' ? linear(h, tokens, block.q) : undefined;
  const k = mode === 'qqkk' ? linear(h, tokens, block.k) : undefined;
  const width = v.length / tokens;
  const headDim = width / heads;
  if (!Number.isInteger(headDim)) throw new Error(`width ${width} is not divisible by ${heads} heads`);
  const scale = 1 / Math.sqrt(headDim);
  const merged = new Float64Array(tokens * width);
  for (let head = 0; head < heads; head++) {
    const off = head * headDim;
    let weights: Float64Array;
    if (mode === 'vv') {
      weights = selfAffinity(v, tokens, width, off, headDim, scale);
    } else if (mode === 'qqkk') {
      const qq = selfAffinity(q!, tokens, width, off, headDim, scale);
      const kk = selfAffinity(k!, tokens, width, off, headDim, scale);
      weights = new Float64Array(tokens * tokens);
      for (let i = 0; i < weights.length; i++) weights[i] = qq[i] + kk[i];
    } else {
      throw new Error(`unknown dense attention ${String(mode)}`);
    }
    for (let i = 0; i < tokens; i++) {
      for (let j = 0; j < tokens; j++) {
        const p = weights[i * tokens + j];
        for (let d = 0; d < headDim; d++) merged[i * width + off + d] += p * v[j * width + off + d];
      }
    }
  }
  return linear(merged, tokens, block.out);
}

/** Pre-LN residual block: x + attn(LN1(x)), then + fc2(act(fc1(LN2(x)))). */
export function transformerBlock(
  x: Float64Array,
  tokens: number,
  block: Block,
  heads: number,
  eps: number,
  act: Activation,
  causal: boolean,
): Float64Array {
  const width = x.length / tokens;
  const h1 = layerNorm(x, tokens, width, block.ln1.weight.data, block.ln1.bias.data, eps);
  const attn = selfAttention(h1, tokens, block, heads, causal);
  const afterAttn = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) afterAttn[i] = x[i] + attn[i];

  const h2 = layerNorm(afterAttn, tokens, width, block.ln2.weight.data, block.ln2.bias.data, eps);
  const hidden = linear(h2, tokens, block.fc1);
  const f = activationFunction(act);
  for (let i = 0; i < hidden.length; i++) hidden[i] = f(hidden[i]);
  const mlp = linear(hidden, tokens, block.fc2);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = afterAttn[i] + mlp[i];
  return out;
}

/** proj [dim, width] (Linear layout) applied to `rows` rows of x [rows, width] → [rows, dim]. */
function project(x: Float64Array, rows: number, proj: Tensor32): Float64Array {
  return linear(x, rows, { weight: proj });
}

// ---------------------------------------------------------------------------------------------
// Text tower
// ---------------------------------------------------------------------------------------------

/**
 * Hidden states of one token row after the final layer norm, [T, width], T = row length.
 * With the causal mask, position t depends on tokens 0..t only, so padding after the EOT
 * token does not change the pooled embedding.
 */
export function referenceTextHidden(w: ClipWeights, row: ArrayLike<number>): Float64Array {
  const cfg = w.config.text;
  const tokens = row.length;
  const width = cfg.width;
  if (tokens < 1 || tokens > w.text.posEmbed.shape[0]) {
    throw new Error(`text row of ${tokens} tokens; the position embedding has ${w.text.posEmbed.shape[0]}`);
  }
  expectShape(w.text.tokenEmbed, [w.text.tokenEmbed.shape[0], width], 'text.tokenEmbed');
  const vocab = w.text.tokenEmbed.shape[0];
  const tokenEmbed = w.text.tokenEmbed.data;
  const posEmbed = w.text.posEmbed.data;
  let x: Float64Array = new Float64Array(tokens * width);
  for (let t = 0; t < tokens; t++) {
    const id = row[t];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`token id ${id} outside the vocabulary of ${vocab}`);
    for (let c = 0; c < width; c++) x[t * width + c] = tokenEmbed[id * width + c] + posEmbed[t * width + c];
  }
  for (const block of w.text.blocks) x = transformerBlock(x, tokens, block, cfg.heads, cfg.layerNormEps, cfg.act, true);
  return layerNorm(x, tokens, width, w.text.lnFinal.weight.data, w.text.lnFinal.bias.data, cfg.layerNormEps);
}

/** First index of the largest value (the EOT token has the highest id in OpenAI vocabularies). */
export function argmaxFirst(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/**
 * Unnormalised text embeddings, one Float64Array [projectionDim] per row.
 * `ids` is either a flat BigInt64Array [B, contextLength] (as fed to the ONNX graph) or rows.
 */
export function referenceTextEmbeds(w: ClipWeights, ids: BigInt64Array | number[][], contextLength: number): Float64Array[] {
  const rows: number[][] = [];
  if (ids instanceof BigInt64Array) {
    if (ids.length % contextLength !== 0) throw new Error(`${ids.length} ids are not whole rows of ${contextLength}`);
    for (let r = 0; r < ids.length / contextLength; r++) {
      rows.push(Array.from(ids.subarray(r * contextLength, (r + 1) * contextLength), (v) => Number(v)));
    }
  } else {
    for (const row of ids) {
      if (row.length !== contextLength) throw new Error(`text row of ${row.length} tokens, expected ${contextLength}`);
      rows.push(row);
    }
  }
  const width = w.config.text.width;
  expectShape(w.text.proj, [w.config.projectionDim, width], 'text.proj');
  return rows.map((row) => {
    const hidden = referenceTextHidden(w, row);
    const eot = argmaxFirst(row);
    return project(hidden.subarray(eot * width, (eot + 1) * width), 1, w.text.proj);
  });
}

// ---------------------------------------------------------------------------------------------
// Image tower
// ---------------------------------------------------------------------------------------------

export interface ReferenceImageOutput {
  /** Per image, LN_post(x_last)[class] · proj, [projectionDim]. */
  imageEmbeds: Float64Array[];
  /** Per image, [denseLayers.length, N, projectionDim] flattened; patches row-major. */
  dense: Float64Array[];
}

/** Class token + patch tokens (conv, stride = kernel = patch, no bias) + position embedding, [1 + g·g, W]. */
export function referenceImageTokens(w: ClipWeights, pixels: Float32Array, image: number, size: number): Float64Array {
  const cfg = w.config.vision;
  const { width, patchSize: patch } = cfg;
  const g = size / patch;
  if (!Number.isInteger(g)) throw new Error(`image size ${size} is not a multiple of the patch size ${patch}`);
  expectShape(w.vision.patchEmbed, [width, 3, patch, patch], 'vision.patchEmbed');
  expectShape(w.vision.classEmbed, [width], 'vision.classEmbed');
  const g0 = Math.round(Math.sqrt(w.vision.posEmbed.shape[0] - 1));
  expectShape(w.vision.posEmbed, [1 + g0 * g0, width], 'vision.posEmbed');

  const pos = g === g0 ? toFloat64(w.vision.posEmbed) : resizePositionEmbedding(w.vision.posEmbed, g0, g);
  const kernel = w.vision.patchEmbed.data;
  const plane = size * size;
  const imageBase = image * 3 * plane;
  const tokens = 1 + g * g;
  const x = new Float64Array(tokens * width);
  for (let c = 0; c < width; c++) x[c] = w.vision.classEmbed.data[c] + pos[c];
  for (let py = 0; py < g; py++) {
    for (let px = 0; px < g; px++) {
      const t = 1 + py * g + px;
      for (let o = 0; o < width; o++) {
        let sum = 0;
        for (let ch = 0; ch < 3; ch++) {
          for (let ky = 0; ky < patch; ky++) {
            for (let kx = 0; kx < patch; kx++) {
              const pixel = pixels[imageBase + ch * plane + (py * patch + ky) * size + px * patch + kx];
              sum += kernel[((o * 3 + ch) * patch + ky) * patch + kx] * pixel;
            }
          }
        }
        x[t * width + o] = sum + pos[t * width + o];
      }
    }
  }
  return x;
}

/**
 * Image embeddings and dense patch features (method.md §2) for B images, pixels NCHW
 * [B, 3, S, S], S = opts.imageSize. Original path: x_0 = ln_pre(tokens), x_l = block l (x_{l-1}).
 * Dense path from S' = opts.denseStart: d_{S'-1} = x_{S'-1},
 *   d_l = d_{l-1} + OutProj_l(denseAttention(LN1_l(x_{l-1}))), no MLP.
 * Dense features at layer l: LN_post(l ≥ S' ? d_l : x_l)[patches] · proj.
 */
export function referenceImageForward(
  w: ClipWeights,
  pixels: Float32Array,
  B: number,
  opts: ImageGraphOptions,
): ReferenceImageOutput {
  const cfg = w.config.vision;
  const { width, heads, layers, layerNormEps: eps, act } = cfg;
  const size = opts.imageSize;
  if (pixels.length !== B * 3 * size * size) throw new Error(`pixels hold ${pixels.length} values, expected ${B}x3x${size}x${size}`);
  if (w.vision.blocks.length !== layers) throw new Error(`config says ${layers} vision layers, weights have ${w.vision.blocks.length}`);
  for (const l of opts.denseLayers) {
    if (!Number.isInteger(l) || l < 1 || l > layers) throw new Error(`dense layer ${l} outside 1..${layers}`);
  }
  const denseStart = opts.denseStart;
  if (!Number.isInteger(denseStart) || denseStart < 1) throw new Error(`denseStart ${denseStart} must be a 1-based block index`);
  const dim = w.config.projectionDim;
  expectShape(w.vision.proj, [dim, width], 'vision.proj');
  const g = size / cfg.patchSize;
  const patches = g * g;
  const tokens = 1 + patches;
  const lastDense = opts.denseLayers.length ? Math.max(...opts.denseLayers) : 0;
  const lnPost = (t: Float64Array) => layerNorm(t, tokens, width, w.vision.lnPost.weight.data, w.vision.lnPost.bias.data, eps);

  const imageEmbeds: Float64Array[] = [];
  const dense: Float64Array[] = [];
  for (let b = 0; b < B; b++) {
    const embedded = referenceImageTokens(w, pixels, b, size);
    let x = layerNorm(embedded, tokens, width, w.vision.lnPre.weight.data, w.vision.lnPre.bias.data, eps); // x_0
    let d: Float64Array | undefined; // d_{l}, defined once l ≥ denseStart - 1
    if (denseStart === 1) d = x;
    const requested = new Set(opts.denseLayers);
    const denseAt = new Map<number, Float64Array>(); // requested layer → its tokens before LN_post
    for (let l = 1; l <= layers; l++) {
      const block = w.vision.blocks[l - 1];
      if (l >= denseStart && l <= lastDense) {
        // The dense step reads the ORIGINAL path's input x_{l-1}; only its residual is d.
        const h = layerNorm(x, tokens, width, block.ln1.weight.data, block.ln1.bias.data, eps);
        const attn = denseAttention(h, tokens, block, heads, opts.denseAttention);
        const next = new Float64Array(d!.length);
        for (let i = 0; i < next.length; i++) next[i] = d![i] + attn[i];
        d = next;
      }
      x = transformerBlock(x, tokens, block, heads, eps, act, false);
      if (l === denseStart - 1) d = x;
      if (requested.has(l)) denseAt.set(l, l >= denseStart ? d! : x);
    }

    const features = new Float64Array(opts.denseLayers.length * patches * dim);
    opts.denseLayers.forEach((l, i) => {
      const normed = lnPost(denseAt.get(l)!);
      features.set(project(normed.subarray(width), patches, w.vision.proj), i * patches * dim);
    });
    dense.push(features);
    imageEmbeds.push(project(lnPost(x).subarray(0, width), 1, w.vision.proj));
  }
  return { imageEmbeds, dense };
}
