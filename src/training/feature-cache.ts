// CLIP outputs of training images, computed once through the service's runtime (the image
// tower in the worker pool) and kept on disk, so training epochs never touch ONNX and a second
// run on the same data starts at once.
//
// One file per image under <dir>/<graph key>/<hash>.bin, the hash over the image's and mask's
// path, size and modification time, the label and the mask size: a changed image, mask or model
// (the graph key covers the checkpoint files and the dense options) gets a new file.
// Layout: "CAFC", uint32 LE header length, JSON header (space-padded to 4 bytes), then float32
// image embedding [dim], float32 dense features [layers, gridH·gridW, dim], uint8 mask
// [maskSize²] (0/1, the mask resized nearest to the model input size, as the evaluation does).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import { decodeImage } from '../imaging/decode.ts';
import { toPixelValues, type PreprocessConfig } from '../clip/input/preprocess.ts';
import { readMaskInto } from '../dataset/mvtec.ts';
import type { Progress } from '../util/progress.ts';
import type { ImageFeatures } from './sample.ts';

const MAGIC = 'CAFC';
// 2: images resized with the antialiased bicubic of resize.ts (1: sharp's cubic).
const CACHE_VERSION = 2;

/** The runtime parts the cache uses (a ClipRuntime has them). */
export interface FeatureRuntime {
  graphs: { key: string };
  graphOptions: { imageSize: number; denseLayers: number[] };
  grid: number;
  dim: number;
  preprocess: PreprocessConfig;
  encodeImages(pixels: Float32Array, batch: number, signal?: AbortSignal): Promise<{ imageEmbeds: Float32Array; dense: Float32Array }>;
}

export interface FeatureItem {
  /** Image file. */
  file: string;
  /** Mask file of a defective image (pixel loss); absent for good images. */
  mask?: string;
  label: 0 | 1;
}

interface Header {
  version: number;
  graphKey: string;
  image: string;
  layers: number;
  gridH: number;
  gridW: number;
  dim: number;
  maskSize: number;
  label: 0 | 1;
}

function fileStamp(path: string): string {
  const st = statSync(path);
  return `${resolve(path)}:${st.size}:${Math.round(st.mtimeMs)}`;
}

/** Where an item's features live for this model (whether or not they exist yet). */
export function featureFile(dir: string, graphKey: string, item: FeatureItem, maskSize: number): string {
  const material = JSON.stringify({ v: CACHE_VERSION, image: fileStamp(item.file), mask: item.mask ? fileStamp(item.mask) : null, label: item.label, maskSize });
  return join(dir, graphKey, `${createHash('sha256').update(material).digest('hex').slice(0, 32)}.bin`);
}

export function writeFeatures(file: string, graphKey: string, image: string, f: ImageFeatures): void {
  const header: Header = { version: CACHE_VERSION, graphKey, image, layers: f.layers, gridH: f.gridH, gridW: f.gridW, dim: f.dim, maskSize: f.maskSize, label: f.label };
  let json = JSON.stringify(header);
  json += ' '.repeat((4 - ((8 + Buffer.byteLength(json)) % 4)) % 4);
  const head = Buffer.alloc(8);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(Buffer.byteLength(json), 4);
  const parts = [head, Buffer.from(json), Buffer.from(f.imageEmbed.buffer, f.imageEmbed.byteOffset, f.imageEmbed.byteLength), Buffer.from(f.dense.buffer, f.dense.byteOffset, f.dense.byteLength), Buffer.from(f.mask)];
  mkdirSync(join(file, '..'), { recursive: true });
  // Write then rename: an interrupted run never leaves half a file that looks complete.
  writeFileAtomicSync(file, Buffer.concat(parts));
}

export function readFeatures(file: string): ImageFeatures {
  const buf = readFileSync(file);
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) throw new Error(`${file}: not a feature cache file`);
  const headerLength = buf.readUInt32LE(4);
  const header = JSON.parse(buf.toString('utf8', 8, 8 + headerLength)) as Header;
  if (header.version !== CACHE_VERSION) throw new Error(`${file}: feature cache version ${header.version}, expected ${CACHE_VERSION}`);
  const { layers, gridH, gridW, dim, maskSize, label } = header;
  let at = 8 + headerLength;
  // Copies, so the arrays are aligned and do not keep the file buffer alive.
  const floats = (count: number) => {
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(buf.subarray(at, at + 4 * count));
    at += 4 * count;
    return out;
  };
  const imageEmbed = floats(dim);
  const dense = floats(layers * gridH * gridW * dim);
  const mask = Uint8Array.from(buf.subarray(at, at + maskSize * maskSize));
  if (mask.length !== maskSize * maskSize) throw new Error(`${file}: truncated`);
  return { imageEmbed, dense, layers, gridH, gridW, dim, mask, maskSize, label };
}

export interface CacheFeaturesOptions {
  dir: string;
  /** Images per image-tower run. */
  batch?: number;
  maxPixels?: number;
  progress?: Progress;
  signal?: AbortSignal;
}

/** The feature file of every item, computing the missing ones in batches. */
export async function cacheFeatures(
  runtime: FeatureRuntime,
  items: readonly FeatureItem[],
  options: CacheFeaturesOptions,
): Promise<{ files: string[]; computed: number; reused: number }> {
  const size = runtime.graphOptions.imageSize;
  const key = runtime.graphs.key;
  const files = items.map((item) => featureFile(options.dir, key, item, size));
  const missing = items.map((_, i) => i).filter((i) => !existsSync(files[i]));
  options.progress?.tick(items.length - missing.length);
  const batch = Math.max(1, options.batch ?? 8);
  const layers = runtime.graphOptions.denseLayers.length;
  const grid = runtime.grid;
  const dim = runtime.dim;
  const layerValues = layers * grid * grid * dim;
  for (let start = 0; start < missing.length; start += batch) {
    const chunk = missing.slice(start, start + batch);
    const decoded = await Promise.all(
      chunk.map(async (i) => {
        try {
          return await decodeImage(await readFile(items[i].file), { maxPixels: options.maxPixels });
        } catch (err) {
          throw new Error(`${items[i].file}: ${(err as Error).message}`, { cause: err });
        }
      }),
    );
    const pixels = toPixelValues(decoded, runtime.preprocess);
    const out = await runtime.encodeImages(pixels, chunk.length, options.signal);
    for (let b = 0; b < chunk.length; b++) {
      const item = items[chunk[b]];
      const mask = new Uint8Array(size * size);
      if (item.mask) await readMaskInto(item.mask, size, mask);
      writeFeatures(files[chunk[b]], key, item.file, {
        imageEmbed: out.imageEmbeds.slice(b * dim, (b + 1) * dim),
        dense: out.dense.slice(b * layerValues, (b + 1) * layerValues),
        layers,
        gridH: grid,
        gridW: grid,
        dim,
        mask,
        maskSize: size,
        label: item.label,
      });
    }
    options.progress?.tick(chunk.length);
  }
  return { files, computed: missing.length, reused: items.length - missing.length };
}
