// Anomaly maps as PNG: the heatmap alone, or the overlay (heatmap over the image, threshold
// contour, region boxes, colour legend). Maps are [0, 1] floats at the image's full resolution
// (row-major, width*height); colours are the fixed scale of colormap.ts, tied to the threshold.
// Pure functions, pixels in and PNG out; the service runs them in the inference workers
// (detection/render-task.ts), so the pixel loops never hold the HTTP thread.
// Memory: one output RGB buffer of the image's size beside the map and the image, nothing else
// image-sized (the marks and the legend are drawn into that buffer in place; an indexed
// heatmap is written a chunk of rows at a time).
import sharp from 'sharp';
import type { DecodedImage } from './decode.ts';
import { SCALE_STEPS, scaleTable } from './colormap.ts';
import { entryRangeOf, paletteIndicesOf, rgbPixelsOf } from './colour-kernel.ts';
import { encodePng } from './png.ts';
import { drawBoxes, drawContour, type Box } from './overlay-marks.ts';
import { drawLegend } from './legend.ts';

/**
 * Interleaved 8-bit RGB → PNG, through sharp (libvips, on libuv's thread pool: the calling
 * thread only waits). Level 1, no adaptive filtering: ~3× faster than the default level 6 for
 * ~1.3× the bytes; libvips' zlib beats Node's here.
 */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1, adaptiveFiltering: false }).toBuffer();
}

/**
 * The scale's table entries grouped by colour: `colourOf[entry]` is the index of the entry's
 * colour in `colours` (distinct RGB triples). The 4096-entry table has some 300–860 colours,
 * more than a palette holds, but a map uses only the entries its values reach.
 */
const distinct = new WeakMap<Uint8Array, { colourOf: Uint16Array; colours: Uint8Array }>();
function distinctColours(rgb: Uint8Array): { colourOf: Uint16Array; colours: Uint8Array } {
  const known = distinct.get(rgb);
  if (known) return known;
  const colourOf = new Uint16Array(SCALE_STEPS);
  const ids = new Map<number, number>();
  const colours: number[] = [];
  for (let k = 0; k < SCALE_STEPS; k++) {
    const key = (rgb[k * 3] << 16) | (rgb[k * 3 + 1] << 8) | rgb[k * 3 + 2];
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size;
      ids.set(key, id);
      colours.push(rgb[k * 3], rgb[k * 3 + 1], rgb[k * 3 + 2]);
    }
    colourOf[k] = id;
  }
  const result = { colourOf, colours: Uint8Array.from(colours) };
  distinct.set(rgb, result);
  return result;
}

/** Largest palette a PNG holds. */
const PALETTE_SIZE = 256;

/**
 * The map alone on the fixed scale of `threshold`: a width × height PNG of exactly the colours
 * of applyColourScale. Indexed (a third of the bytes to compress) when the colours between the
 * map's least and greatest entry fit a palette — a blurred map reaches every entry between the
 * two — and RGB otherwise; both decode to the same pixels. The per-pixel passes run as
 * WebAssembly SIMD kernels (colour-kernel.ts).
 */
export async function renderHeatmapPng(map: Float32Array, width: number, height: number, threshold: number): Promise<Buffer> {
  const n = width * height;
  if (map.length !== n) throw new RangeError(`map has ${map.length} values, expected ${width}×${height} = ${n}`);
  const { rgb } = scaleTable(threshold);
  const { colourOf, colours } = distinctColours(rgb);
  const [least, most] = entryRangeOf(map);
  const slot = new Int16Array(colours.length / 3).fill(-1);
  let used = 0;
  for (let k = least; k <= most && used <= PALETTE_SIZE; k++) if (slot[colourOf[k]] < 0) slot[colourOf[k]] = used++;
  if (used > PALETTE_SIZE) {
    const out = Buffer.allocUnsafe(n * 3);
    rgbPixelsOf(map, rgb, out);
    return encodeRgbPng(out, width, height);
  }
  const palette = new Uint8Array(used * 3);
  const entrySlot = new Uint8Array(SCALE_STEPS);
  for (let c = 0; c < slot.length; c++) if (slot[c] >= 0) palette.set(colours.subarray(c * 3, c * 3 + 3), slot[c] * 3);
  for (let k = 0; k < SCALE_STEPS; k++) entrySlot[k] = Math.max(0, slot[colourOf[k]]);
  let indices = new Uint8Array(0);
  return encodePng({
    width,
    height,
    colour: { type: 'palette', palette },
    rows(y0, y1, out, stride, offset) {
      // The chunk's indices in one pass, then placed row by row after each row's filter byte.
      if (indices.length < (y1 - y0) * width) indices = new Uint8Array((y1 - y0) * width);
      paletteIndicesOf(map.subarray(y0 * width, y1 * width), entrySlot, indices);
      for (let y = y0; y < y1; y++) out.set(indices.subarray((y - y0) * width, (y - y0 + 1) * width), (y - y0) * stride + offset);
    },
  });
}

/**
 * Per byte round(alpha · heat + (1 − alpha) · image): both interleaved RGB of the same size,
 * written into `out` (default: a new buffer). At one half that is (heat + image + 1) >> 1 exactly.
 */
export function blendOverlay(heat: Uint8Array, image: Uint8Array, alpha = 0.5, out: Uint8Array = Buffer.allocUnsafe(heat.length)): Uint8Array {
  if (heat.length !== image.length || out.length < heat.length) throw new RangeError(`heatmap has ${heat.length} bytes, the image ${image.length}, the output ${out.length}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  const n = heat.length;
  if (alpha === 0.5) for (let i = 0; i < n; i++) out[i] = (heat[i] + image[i] + 1) >> 1;
  else for (let i = 0; i < n; i++) out[i] = Math.round(alpha * heat[i] + (1 - alpha) * image[i]);
  return out;
}

export interface OverlayOptions {
  /** The scale's boundary and the contour's level. */
  threshold: number;
  /** Region boxes in image pixels, outlined 2 px inside. */
  regions?: readonly Box[];
  /** Draw the threshold contour (default true). */
  contour?: boolean;
  /** Draw the colour legend (default true). */
  legend?: boolean;
}

/**
 * The image with the map blended over it, each value by its scale colour's own weight (normal
 * values faintly, hot ones strongly, as on the web page), as interleaved RGB.
 */
export function blendScaled(image: DecodedImage, map: Float32Array, threshold: number): Buffer {
  const n = image.width * image.height;
  if (map.length !== n) throw new RangeError(`map has ${map.length} values but the image is ${image.width}×${image.height}`);
  const { rgb, weight } = scaleTable(threshold);
  // Per entry: colour · weight + 128 (the rounding), and the image's weight 256 − weight.
  const pre = new Int32Array(SCALE_STEPS * 3);
  const rest = new Int32Array(SCALE_STEPS);
  for (let k = 0; k < SCALE_STEPS; k++) {
    for (let c = 0; c < 3; c++) pre[k * 3 + c] = rgb[k * 3 + c] * weight[k] + 128;
    rest[k] = 256 - weight[k];
  }
  const src = new Uint8Array(image.rgb.buffer, image.rgb.byteOffset, n * 3);
  const buffer = Buffer.allocUnsafe(n * 3);
  const out = new Uint8Array(buffer.buffer, buffer.byteOffset, n * 3);
  const top = SCALE_STEPS - 1;
  for (let i = 0, o = 0; i < n; i++, o += 3) {
    const v = map[i];
    const idx = v >= 1 ? top : v > 0 ? (v * top + 0.5) | 0 : 0; // scaleIndex, inlined
    const b = rest[idx];
    const k = idx * 3;
    out[o] = (pre[k] + src[o] * b) >> 8;
    out[o + 1] = (pre[k + 1] + src[o + 1] * b) >> 8;
    out[o + 2] = (pre[k + 2] + src[o + 2] * b) >> 8;
  }
  return buffer;
}

/** The overlay PNG, the size of the image. */
export async function renderOverlayPng(image: DecodedImage, map: Float32Array, options: OverlayOptions): Promise<Buffer> {
  const { width, height } = image;
  const out = blendScaled(image, map, options.threshold);
  if (options.contour !== false) drawContour(out, map, width, height, options.threshold);
  drawBoxes(out, width, height, options.regions ?? []);
  if (options.legend !== false) await drawLegend(out, width, height, options.threshold);
  return encodeRgbPng(out, width, height);
}
