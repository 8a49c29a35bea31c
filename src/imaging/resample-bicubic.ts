// Whole-image resampling to the model's input size, computed the way torchvision's
// `Resize(size, interpolation=BICUBIC, antialias=True)` computes it on float tensors (PyTorch's
// `_upsample_bicubic2d_aa`, Pillow's filter): separable, Keys cubic with a = −0.5, the kernel
// widened by the scale factor when shrinking (anti-aliasing), taps outside the image dropped
// and the rest renormalised, no rounding in between. anomalib's WinCLIP feeds its model exactly
// this, so the same image gives the same input tensor here.
//
// Written by hand rather than with sharp because libvips resamples differently: a box
// pre-shrink for large factors, its own kernel placement, and 8-bit rounding of the result.
// It is plain JavaScript on typed arrays, so callers run it in a worker thread, not on the
// HTTP thread (a 12-megapixel photo takes ~0.2 s).

/** For each output index: the first input index, how many taps, and their weights. */
export interface ResizeTaps {
  start: Int32Array;
  count: Int32Array;
  /** `stride` weights per output index; unused ones are 0. */
  weights: Float64Array;
  stride: number;
}

/** Keys' cubic convolution kernel with a = −0.5 (Pillow's and PyTorch's antialiased bicubic). */
export function cubicKernel(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** PyTorch's `_compute_weights_aa` for bicubic (align_corners=false, no scale override). */
export function resizeTaps(inSize: number, outSize: number): ResizeTaps {
  if (!(Number.isInteger(inSize) && inSize > 0 && Number.isInteger(outSize) && outSize > 0)) {
    throw new RangeError(`resize sizes must be positive integers, got ${inSize} → ${outSize}`);
  }
  // PyTorch computes the scale in float32 for float inputs.
  const scale = Math.fround(inSize / outSize);
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const w = cubicKernel((j + lo - center + 0.5) * invScale);
      weights[i * stride + j] = w;
      total += w;
    }
    if (total !== 0) for (let j = 0; j < n; j++) weights[i * stride + j] /= total;
    start[i] = lo;
    count[i] = n;
  }
  return { start, count, weights, stride };
}

/**
 * 8-bit RGB, interleaved, `width`×`height` → three planes (R, G, B) of `outWidth`×`outHeight`
 * float32 in the input's units (0..255; values may overshoot slightly, as PyTorch's do).
 * Width first, then height, as PyTorch does; the intermediate is float64.
 */
export function resizeRgbToPlanes(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`${rgb.length} bytes is not ${width}×${height}×3`);
  const plane = outWidth * outHeight;
  // Horizontal pass: height rows × outWidth, channel-interleaved.
  const rows = new Float64Array(height * outWidth * 3);
  if (width === outWidth) {
    for (let i = 0; i < rows.length; i++) rows[i] = rgb[i];
  } else {
    const { start, count, weights, stride } = resizeTaps(width, outWidth);
    for (let y = 0; y < height; y++) {
      const src = y * width * 3;
      const dst = y * outWidth * 3;
      for (let x = 0; x < outWidth; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        let s = src + start[x] * 3;
        const w0 = x * stride;
        for (let j = 0, n = count[x]; j < n; j++, s += 3) {
          const w = weights[w0 + j];
          r += rgb[s] * w;
          g += rgb[s + 1] * w;
          b += rgb[s + 2] * w;
        }
        rows[dst + x * 3] = r;
        rows[dst + x * 3 + 1] = g;
        rows[dst + x * 3 + 2] = b;
      }
    }
  }
  // Vertical pass into channel planes.
  const out = new Float32Array(3 * plane);
  if (height === outHeight) {
    for (let i = 0; i < plane; i++) {
      out[i] = rows[i * 3];
      out[plane + i] = rows[i * 3 + 1];
      out[2 * plane + i] = rows[i * 3 + 2];
    }
    return out;
  }
  const { start, count, weights, stride } = resizeTaps(height, outHeight);
  const rowLen = outWidth * 3;
  for (let y = 0; y < outHeight; y++) {
    const w0 = y * stride;
    const first = start[y];
    const n = count[y];
    for (let x = 0; x < outWidth; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let s = first * rowLen + x * 3;
      for (let j = 0; j < n; j++, s += rowLen) {
        const w = weights[w0 + j];
        r += rows[s] * w;
        g += rows[s + 1] * w;
        b += rows[s + 2] * w;
      }
      const o = y * outWidth + x;
      out[o] = r;
      out[plane + o] = g;
      out[2 * plane + o] = b;
    }
  }
  return out;
}
