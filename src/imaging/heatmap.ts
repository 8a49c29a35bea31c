// Anomaly maps as PNG: the heatmap alone, or blended over the image. Maps are [0, 1] floats
// at the image's full resolution (row-major, width*height), so every pixel of the upload has its colour.
// The one overlay blend, for the API's map=overlay, the evaluation's figures and the webhook event.
import sharp from 'sharp';
import type { DecodedImage } from './decode.ts';
import { applyColormap } from './colormap.ts';

/** Interleaved 8-bit RGB → PNG. */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** The map alone, coloured with Turbo: width × height RGB PNG. */
export async function renderHeatmapPng(map: Float32Array, width: number, height: number): Promise<Buffer> {
  return encodeRgbPng(applyColormap(map, width, height), width, height);
}

/** Per byte round(alpha · heat + (1 − alpha) · image): both interleaved RGB of the same size. */
export function blendOverlay(heat: Uint8Array, image: Uint8Array, alpha = 0.5): Buffer {
  if (heat.length !== image.length) throw new RangeError(`heatmap has ${heat.length} bytes but the image ${image.length}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  const out = Buffer.alloc(heat.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(alpha * heat[i] + (1 - alpha) * image[i]);
  return out;
}

/** The heatmap over the image, same size as the image; alpha ∈ [0, 1] is the heatmap's weight. */
export async function renderOverlayPng(image: DecodedImage, map: Float32Array, width: number, height: number, alpha = 0.5): Promise<Buffer> {
  if (image.width !== width || image.height !== height) {
    throw new RangeError(`map is ${width}×${height} but the image is ${image.width}×${image.height}`);
  }
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  return encodeRgbPng(blendOverlay(applyColormap(map, width, height), image.rgb, alpha), width, height);
}
