// Google's Turbo colour map (Mikhail 2019, Apache-2.0), from its published polynomial
// approximation: perceptually smoother than jet, with the same blue → red reading.
function turbo(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t));
  const r = 0.13572138 + x * (4.6153926 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))));
  const g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))));
  const b = 0.1066733 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))));
  const to8 = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);
  return [to8(r), to8(g), to8(b)];
}

/** 256 × RGB lookup table. */
export const TURBO_LUT: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.set(turbo(i / 255), i * 3);
  return lut;
})();

/** Map values (clamped to [min, max]) → RGB bytes through the Turbo table. */
export function applyColormap(map: Float32Array, width: number, height: number, opts: { min?: number; max?: number } = {}): Buffer {
  const min = opts.min ?? 0;
  const max = opts.max ?? 1;
  const span = max > min ? max - min : 1;
  const n = width * height;
  const out = Buffer.alloc(n * 3);
  for (let i = 0; i < n; i++) {
    const v = (map[i] - min) / span;
    const idx = v <= 0 || !(v === v) ? 0 : v >= 1 ? 255 : Math.round(v * 255);
    out[i * 3] = TURBO_LUT[idx * 3];
    out[i * 3 + 1] = TURBO_LUT[idx * 3 + 1];
    out[i * 3 + 2] = TURBO_LUT[idx * 3 + 2];
  }
  return out;
}
