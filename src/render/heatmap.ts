// Anomaly maps as PNG: the heatmap alone, or blended over the image. Maps are [0, 1] floats
// at the image's full resolution, so every pixel of the upload has its colour.
import sharp from 'sharp';
import type { DecodedImage } from '../clip/preprocess.ts';
import { applyColormap } from './colormap.ts';

export function renderHeatmapPng(map: Float32Array, width: number, height: number): Promise<Buffer> {
  return sharp(applyColormap(map, width, height), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** The heatmap over the image; alpha is the heatmap's weight. */
export async function renderOverlayPng(image: DecodedImage, map: Float32Array, width: number, height: number, alpha = 0.5): Promise<Buffer> {
  if (image.width !== width || image.height !== height) {
    throw new RangeError(`map is ${width}×${height} but the image is ${image.width}×${image.height}`);
  }
  const heat = applyColormap(map, width, height);
  const out = Buffer.alloc(heat.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(alpha * heat[i] + (1 - alpha) * image.rgb[i]);
  return sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
