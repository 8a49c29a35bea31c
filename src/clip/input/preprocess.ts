// Model input: decoded RGB images → NCHW float32 pixel values at the model's input size (the
// whole image resized with torch's antialiased bicubic, then normalised), and the
// preprocessing constants read from a checkpoint's preprocessor_config.json.
import { resizeRgbToAffinePlanes } from '../../imaging/resample-bicubic.ts';
import type { RgbImage } from '../../imaging/decode.ts';

export interface PreprocessConfig {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export const CLIP_IMAGE_SIZE = 224;
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/**
 * NCHW float32 [B, 3, S, S]: each whole image resized to S×S (aspect ratio not kept, no crop,
 * so the anomaly map covers every pixel) with torchvision's antialiased bicubic (resize.ts),
 * scaled to 0..1 and normalised per channel. Synchronous CPU work: the service calls it inside
 * its inference workers.
 */
export function toPixelValues(images: readonly RgbImage[], cfg: PreprocessConfig): Float32Array {
  const S = cfg.size;
  const plane = S * S;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((img, b) => {
    if (img.rgb.length !== img.width * img.height * 3) {
      throw new RangeError(`image ${b}: ${img.rgb.length} bytes is not ${img.width}×${img.height}×3`);
    }
    // (v / 255 - mean) / std, folded into one multiply-add, fused into the resize's last pass.
    const scale = [0, 1, 2].map((c) => 1 / (255 * cfg.std[c])) as [number, number, number];
    const shift = [0, 1, 2].map((c) => cfg.mean[c] / cfg.std[c]) as [number, number, number];
    resizeRgbToAffinePlanes(img.rgb, img.width, img.height, S, S, scale, shift, out, b * 3 * plane);
  });
  return out;
}

function triple(v: unknown, fallback: [number, number, number], positive = false): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3) return fallback;
  const ok = v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  return ok ? [v[0], v[1], v[2]] : fallback;
}

function sizeOf(field: unknown): number | undefined {
  const valid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (valid(field)) return field;
  if (field && typeof field === 'object') {
    const s = field as Record<string, unknown>;
    for (const v of [s.height, s.width, s.shortest_edge]) if (valid(v)) return v;
  }
  return undefined;
}

/**
 * {size, mean, std} from a Hugging Face preprocessor_config.json, CLIP defaults otherwise.
 * crop_size wins over size: it is the square the model was trained on, and this service
 * squashes the whole image into that square instead of resizing then cropping.
 */
export function readPreprocessorConfig(json: unknown): PreprocessConfig {
  const j = json && typeof json === 'object' ? (json as Record<string, unknown>) : {};
  return {
    size: sizeOf(j.crop_size) ?? sizeOf(j.size) ?? CLIP_IMAGE_SIZE,
    mean: triple(j.image_mean, CLIP_MEAN),
    std: triple(j.image_std, CLIP_STD, true),
  };
}

/**
 * For open_clip folders: `preprocess_cfg.mean`/`std` of open_clip_config.json (what
 * open_clip's image transform normalises with) override `base`; absent or invalid, `base`
 * stays. The size is the runtime's (the graph's input size), not taken from here.
 */
export function applyOpenClipPreprocess(base: PreprocessConfig, openClipJson: unknown): PreprocessConfig {
  const j = openClipJson && typeof openClipJson === 'object' ? (openClipJson as Record<string, unknown>) : {};
  const cfg = j.preprocess_cfg && typeof j.preprocess_cfg === 'object' ? (j.preprocess_cfg as Record<string, unknown>) : {};
  return { ...base, mean: triple(cfg.mean, base.mean), std: triple(cfg.std, base.std, true) };
}
