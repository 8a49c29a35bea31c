// WinCLIP figures shared by bench:winclip and `npm run bench`: 0-, 1- and 4-shot through the
// detector, the references decoded once (as a stored category's are: their window embeddings are
// then cached) and, for 4-shot, decoded anew per request (nothing cached across requests).
import type { ClipDetector } from '../src/detection/clip-detector.ts';
import { decodeImage, type DecodedImage } from '../src/imaging/decode.ts';
import type { ClipConfig } from '../src/clip/types.ts';
import { imageTowerMacs, transformerMacs } from './tower.ts';
import { time, type Figure } from './figures.ts';

/** Multiply-adds of the window graph for one image: the full tower plus one short sequence per window. */
export function windowGraphMacs(config: ClipConfig, imageSize: number, windowSizes: readonly number[]): number {
  const grid = Math.floor(imageSize / config.vision.patchSize);
  let macs = imageTowerMacs(config, imageSize);
  for (const k of windowSizes) macs += (grid - k + 1) ** 2 * transformerMacs(k * k + 1, config.vision.width, config.vision.layers);
  return macs;
}

export async function winclipFigures(detector: ClipDetector, query: Buffer, references: Buffer[], runs: number, prefix = 'winclip'): Promise<Figure[]> {
  const image = await decodeImage(query);
  const decoded = await Promise.all(references.map((b) => decodeImage(b)));
  const score = (refs: readonly DecodedImage[]) =>
    detector.scoreDecoded({ image, category: 'metal plate', prompts: { mode: 'templated' }, threshold: 0.5, method: 'winclip', references: refs });
  const figures: Figure[] = [];
  figures.push(await time(`${prefix} 0-shot`, runs, () => score([])));
  figures.push(await time(`${prefix} 1-shot (references cached)`, runs, () => score(decoded.slice(0, 1))));
  figures.push(await time(`${prefix} 4-shot (references cached)`, runs, () => score(decoded.slice(0, 4))));
  // Fresh decodes: new image objects, so the window graph runs on the references every time.
  figures.push(await time(`${prefix} 4-shot (references encoded per request)`, Math.max(1, runs >> 1), async () => score(await Promise.all(references.slice(0, 4).map((b) => decodeImage(b))))));
  return figures;
}
