// The fixed colour scale of anomaly maps, tied to the threshold and never to the image's own
// minimum and maximum: 0 is the normal colour, the threshold the boundary colour, 1 the hot
// end. The same map value has the same colour on every image, so a normal image looks normal.
// The stops are those of the web page (web/src/map/colour-scale.ts), so the page's overlay and
// the API's PNGs read alike; alpha is each colour's weight when blended over the image.

export type Rgb = readonly [number, number, number];

interface Stop {
  at: number;
  rgb: Rgb;
  alpha: number;
}

export const NORMAL_COLOUR: Rgb = [44, 82, 180];
const COOL_COLOUR: Rgb = [30, 160, 190];
export const BOUNDARY_COLOUR: Rgb = [250, 216, 40];
const WARM_COLOUR: Rgb = [245, 122, 24];
export const HOT_COLOUR: Rgb = [196, 14, 40];

const NORMAL: Stop = { at: 0, rgb: NORMAL_COLOUR, alpha: 0.22 };
const BOUNDARY_ALPHA = 0.62;

/** Stops for threshold t: 0 → normal, t → boundary, 1 → hot (t clamped to 0–1). */
function stops(threshold: number): Stop[] {
  const t = Math.min(1, Math.max(0, Number.isFinite(threshold) ? threshold : 0.5));
  const boundary: Stop = { at: t, rgb: BOUNDARY_COLOUR, alpha: BOUNDARY_ALPHA };
  const list: Stop[] = t > 0 ? [NORMAL, { at: 0.6 * t, rgb: COOL_COLOUR, alpha: 0.32 }, boundary] : [boundary];
  if (t < 1) list.push({ at: t + 0.35 * (1 - t), rgb: WARM_COLOUR, alpha: 0.7 }, { at: 1, rgb: HOT_COLOUR, alpha: 0.8 });
  return list;
}

/** Colour (0–255 floats) and blend weight (0–1) of one map value; outside 0–1 clamped, NaN normal. */
export function scaleColour(value: number, threshold: number): { rgb: Rgb; alpha: number } {
  return colourOn(stops(threshold), value);
}

function colourOn(s: Stop[], value: number): { rgb: Rgb; alpha: number } {
  const v = value >= 1 ? 1 : value > 0 ? value : 0;
  if (v <= s[0].at) return s[0];
  for (let i = 1; i < s.length; i++) {
    if (v > s[i].at) continue;
    const a = s[i - 1];
    const b = s[i];
    const f = (v - a.at) / (b.at - a.at);
    const mix = (k: number) => a.rgb[k] + (b.rgb[k] - a.rgb[k]) * f;
    return { rgb: [mix(0), mix(1), mix(2)], alpha: a.alpha + (b.alpha - a.alpha) * f };
  }
  return s[s.length - 1];
}

/** Table entries: fine enough that neighbouring entries differ by about one colour level. */
export const SCALE_STEPS = 4096;

/** The table entry of a value (NaN and values ≤ 0 → 0, ≥ 1 → the last). */
export function scaleIndex(value: number): number {
  // (x + 0.5) | 0 is Math.round(x) for 0 < x < 4095 (exact for float32 inputs), at a quarter of its cost per pixel.
  return value >= 1 ? SCALE_STEPS - 1 : value > 0 ? (value * (SCALE_STEPS - 1) + 0.5) | 0 : 0;
}

export interface ScaleTable {
  /** SCALE_STEPS × RGB bytes. */
  rgb: Uint8Array;
  /** SCALE_STEPS blend weights in 0–256 (fixed point, for the overlay's integer blend). */
  weight: Uint16Array;
}

/** Tables of recent thresholds (a service sees few distinct ones): building one costs milliseconds. */
const tables = new Map<number, ScaleTable>();
const TABLES_KEPT = 16;

/**
 * The scale for threshold t sampled into a table; the threshold's entry is exactly the boundary
 * colour. Shared between callers: treat it as read-only.
 */
export function scaleTable(threshold: number): ScaleTable {
  const cached = tables.get(threshold);
  if (cached) return cached;
  const rgb = new Uint8Array(SCALE_STEPS * 3);
  const weight = new Uint16Array(SCALE_STEPS);
  const put = (i: number, c: { rgb: Rgb; alpha: number }) => {
    rgb[i * 3] = Math.round(c.rgb[0]);
    rgb[i * 3 + 1] = Math.round(c.rgb[1]);
    rgb[i * 3 + 2] = Math.round(c.rgb[2]);
    weight[i] = Math.round(c.alpha * 256);
  };
  const s = stops(threshold);
  for (let i = 0; i < SCALE_STEPS; i++) put(i, colourOn(s, i / (SCALE_STEPS - 1)));
  // Sampling would put the threshold between two entries; the boundary must read as itself.
  put(scaleIndex(threshold), { rgb: BOUNDARY_COLOUR, alpha: BOUNDARY_ALPHA });
  const table = { rgb, weight };
  if (tables.size >= TABLES_KEPT) tables.delete(tables.keys().next().value!);
  tables.set(threshold, table);
  return table;
}

/** Map values → RGB bytes (row-major, 3 channels) on the fixed scale of `threshold`. */
export function applyColourScale(map: Float32Array, width: number, height: number, threshold: number): Buffer {
  const n = width * height;
  if (map.length !== n) throw new RangeError(`map has ${map.length} values, expected ${width}×${height} = ${n}`);
  const { rgb } = scaleTable(threshold);
  const out = Buffer.allocUnsafe(n * 3);
  for (let i = 0; i < n; i++) {
    const k = scaleIndex(map[i]) * 3;
    out[i * 3] = rgb[k];
    out[i * 3 + 1] = rgb[k + 1];
    out[i * 3 + 2] = rgb[k + 2];
  }
  return out;
}
