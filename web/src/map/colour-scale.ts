// The fixed colour scale of the anomaly overlay, tied to the threshold and never to the image's
// own minimum and maximum: 0 is the normal colour, the threshold is the boundary colour, and
// values above it run to hot. The same map value has the same colour on every image.

export type Rgba = [number, number, number, number];

interface Stop {
  at: number;
  rgba: Rgba;
}

export const NORMAL: Rgba = [44, 82, 180, 0.22];
const COOL: Rgba = [30, 160, 190, 0.32];
export const BOUNDARY: Rgba = [250, 216, 40, 0.62];
const WARM: Rgba = [245, 122, 24, 0.7];
export const HOT: Rgba = [196, 14, 40, 0.8];

/** Stops of the scale for threshold t: 0 → normal, t → boundary, 1 → hot. */
function stops(t: number): Stop[] {
  const th = Math.min(1, Math.max(0, t));
  const list: Stop[] = [{ at: 0, rgba: NORMAL }];
  if (th > 0) list.push({ at: 0.6 * th, rgba: COOL }, { at: th, rgba: BOUNDARY });
  else list[0] = { at: 0, rgba: BOUNDARY };
  if (th < 1) list.push({ at: th + 0.35 * (1 - th), rgba: WARM }, { at: 1, rgba: HOT });
  return list;
}

/** Colour of one map value under threshold t (values outside 0–1 are clamped; NaN is normal). */
export function colourAt(value: number, threshold: number): Rgba {
  const v = value >= 1 ? 1 : value > 0 ? value : 0;
  const s = stops(threshold);
  if (v <= s[0].at) return s[0].rgba;
  for (let i = 1; i < s.length; i++) {
    if (v <= s[i].at) {
      const a = s[i - 1];
      const b = s[i];
      const f = b.at > a.at ? (v - a.at) / (b.at - a.at) : 1;
      return [0, 1, 2, 3].map((k) => a.rgba[k] + (b.rgba[k] - a.rgba[k]) * f) as Rgba;
    }
  }
  return s[s.length - 1].rgba;
}

export const LUT_SIZE = 1024;

/** RGBA bytes (alpha 0–255) for LUT_SIZE evenly spaced values in 0–1, for threshold t. */
export function colourTable(threshold: number): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(LUT_SIZE * 4);
  for (let i = 0; i < LUT_SIZE; i++) {
    const [r, g, b, a] = colourAt(i / (LUT_SIZE - 1), threshold);
    lut.set([r, g, b, Math.round(a * 255)], i * 4);
  }
  return lut;
}

/** The map as RGBA pixels (ImageData's layout) under threshold t. */
export function paintMap(values: Float32Array, threshold: number, out: Uint8ClampedArray<ArrayBuffer> = new Uint8ClampedArray(values.length * 4)): Uint8ClampedArray<ArrayBuffer> {
  const lut = colourTable(threshold);
  const top = LUT_SIZE - 1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const idx = v >= 1 ? top : v > 0 ? Math.round(v * top) : 0;
    out[i * 4] = lut[idx * 4];
    out[i * 4 + 1] = lut[idx * 4 + 1];
    out[i * 4 + 2] = lut[idx * 4 + 2];
    out[i * 4 + 3] = lut[idx * 4 + 3];
  }
  return out;
}

export const css = ([r, g, b]: Rgba, alpha = 1) => `rgba(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)}, ${alpha})`;
