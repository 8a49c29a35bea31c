// The Turbo colour map (Anton Mikhailov, Google AI Blog, 2019): perceptually smoother than jet,
// with the same dark blue → green → dark red reading. Built from the degree-5 polynomial
// approximation Google published with it (Ruofei Du; Apache-2.0, gist mikhailov-work/
// 0d177465a8151eb6ede1768d51d476c7), sampled into a 256-entry table.

/** Turbo at x ∈ [0, 1] → RGB in [0, 1], from the published polynomial (Horner form). */
function turboPolynomial(x: number): [number, number, number] {
  const r = 0.13572138 + x * (4.6153926 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))));
  const g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))));
  const b = 0.1066733 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))));
  return [r, g, b];
}

// The fit is poor at its very start (x = 0 gives a reddish near-black, 35,23,27); from
// x = 0.01 it gives the table's dark blue (45,29,58 vs 48,18,59 in Google's table).
const LOW_END = 0.01;

/** 256 × RGB lookup table, entry i for value i / 255. */
export const TURBO_LUT: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  const to8 = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = turboPolynomial(LOW_END + (1 - LOW_END) * (i / 255));
    lut.set([to8(r), to8(g), to8(b)], i * 3);
  }
  return lut;
})();

/**
 * Map values → RGB bytes (row-major, 3 channels) through the Turbo table. Values are scaled
 * from [min, max] to [0, 1] and clamped; NaN shows as the low end.
 */
export function applyColormap(map: Float32Array, width: number, height: number, opts: { min?: number; max?: number } = {}): Buffer {
  const n = width * height;
  if (map.length !== n) throw new RangeError(`map has ${map.length} values, expected ${width}×${height} = ${n}`);
  const min = opts.min ?? 0;
  const max = opts.max ?? 1;
  const span = max > min ? max - min : 1;
  const out = Buffer.alloc(n * 3);
  for (let i = 0; i < n; i++) {
    const v = (map[i] - min) / span;
    const idx = v >= 1 ? 255 : v > 0 ? Math.round(v * 255) : 0; // NaN fails both tests → 0
    out[i * 3] = TURBO_LUT[idx * 3];
    out[i * 3 + 1] = TURBO_LUT[idx * 3 + 1];
    out[i * 3 + 2] = TURBO_LUT[idx * 3 + 2];
  }
  return out;
}
