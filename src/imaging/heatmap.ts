// Anomaly maps as PNG: the heatmap alone, or the overlay (heatmap over the image, threshold
// contour, region boxes, colour legend). Maps are [0, 1] floats at the image's full resolution
// (row-major, width*height); colours are the fixed scale of colormap.ts, tied to the threshold.
// Pure functions, pixels in and PNG out, so rendering can move into the workers unchanged.
// Memory: one output RGB buffer of the image's size beside the map and the image, nothing else
// image-sized (the marks and the legend are drawn into that buffer in place).
import sharp from 'sharp';
import type { DecodedImage } from './decode.ts';
import { applyColourScale, scaleIndex, scaleTable } from './colormap.ts';
import { drawBoxes, drawContour, type Box } from './overlay-marks.ts';
import { drawLegend } from './legend.ts';

/** Interleaved 8-bit RGB → PNG. */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** The map alone on the fixed scale of `threshold`: width × height RGB PNG. */
export async function renderHeatmapPng(map: Float32Array, width: number, height: number, threshold: number): Promise<Buffer> {
  return encodeRgbPng(applyColourScale(map, width, height, threshold), width, height);
}

/** Per byte round(alpha · heat + (1 − alpha) · image): both interleaved RGB of the same size. */
export function blendOverlay(heat: Uint8Array, image: Uint8Array, alpha = 0.5): Buffer {
  if (heat.length !== image.length) throw new RangeError(`heatmap has ${heat.length} bytes but the image ${image.length}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  const out = Buffer.alloc(heat.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(alpha * heat[i] + (1 - alpha) * image[i]);
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
  const src = image.rgb;
  const out = Buffer.allocUnsafe(n * 3);
  for (let i = 0; i < n; i++) {
    const idx = scaleIndex(map[i]);
    const a = weight[idx];
    const b = 256 - a;
    const o = i * 3;
    const k = idx * 3;
    out[o] = (rgb[k] * a + src[o] * b + 128) >> 8;
    out[o + 1] = (rgb[k + 1] * a + src[o + 1] * b + 128) >> 8;
    out[o + 2] = (rgb[k + 2] * a + src[o + 2] * b + 128) >> 8;
  }
  return out;
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
