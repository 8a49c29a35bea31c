// Views of a normal reference image for parts that come in any pose: flips and quarter turns
// of the decoded RGB pixels (the dihedral group D4), so the patch memory holds every pose.
import type { DecodedImage } from './decode.ts';

export type Augment = 'none' | 'flips' | 'rotations';

/** Pixel (x, y) of the view comes from pixel map(x, y, w, h) of the w×h source; transposed views swap the sides. */
type View = { swap: boolean; map: (x: number, y: number, w: number, h: number) => [number, number] };

const IDENTITY: View = { swap: false, map: (x, y) => [x, y] };
const FLIPS: View[] = [
  IDENTITY,
  { swap: false, map: (x, y, w) => [w - 1 - x, y] },
  { swap: false, map: (x, y, _w, h) => [x, h - 1 - y] },
  { swap: false, map: (x, y, w, h) => [w - 1 - x, h - 1 - y] },
];
// Transposes: with the flips they make the 8 symmetries of a rectangle's pixel grid.
const TURNS: View[] = [
  { swap: true, map: (x, y) => [y, x] },
  { swap: true, map: (x, y, _w, h) => [y, h - 1 - x] },
  { swap: true, map: (x, y, w) => [w - 1 - y, x] },
  { swap: true, map: (x, y, w, h) => [w - 1 - y, h - 1 - x] },
];

export function viewCount(augment: Augment): number {
  return augment === 'none' ? 1 : augment === 'flips' ? 4 : 8;
}

/** The image's views: itself, then its flips (and quarter turns). */
export function augmentViews(image: DecodedImage, augment: Augment): DecodedImage[] {
  const views = augment === 'none' ? [IDENTITY] : augment === 'flips' ? FLIPS : [...FLIPS, ...TURNS];
  return views.map((v) => (v === IDENTITY ? image : applyView(image, v)));
}

function applyView(image: DecodedImage, view: View): DecodedImage {
  const { width: w, height: h, rgb } = image;
  const [ow, oh] = view.swap ? [h, w] : [w, h];
  const out = Buffer.alloc(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const [sx, sy] = view.map(x, y, w, h);
      const src = (sy * w + sx) * 3;
      const dst = (y * ow + x) * 3;
      out[dst] = rgb[src];
      out[dst + 1] = rgb[src + 1];
      out[dst + 2] = rgb[src + 2];
    }
  }
  return { width: ow, height: oh, rgb: out, format: image.format };
}
