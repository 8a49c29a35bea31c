// Lines drawn into an RGB buffer in place: the threshold contour and the region boxes of
// map=overlay. They write into the overlay's one output buffer, so drawing costs no image-size
// allocation (a 49-megapixel overlay holds its map, the image and the output, nothing more).
import type { Rgb } from './colormap.ts';

/** The web page's colours (web/src/viewer.ts): white contour, cyan boxes. */
export const CONTOUR_COLOUR: Rgb = [255, 255, 255];
export const REGION_COLOUR: Rgb = [0, 229, 255];
/** Box outline width in pixels. */
export const REGION_LINE = 2;

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function put(rgb: Uint8Array, i: number, c: Rgb): void {
  rgb[i * 3] = c[0];
  rgb[i * 3 + 1] = c[1];
  rgb[i * 3 + 2] = c[2];
}

/**
 * The boundary of {map ≥ threshold}, 1 px: the pixels inside it with a 4-neighbour outside.
 * Read from the map on the fly: no mask the size of the image.
 */
export function drawContour(rgb: Uint8Array, map: Float32Array, width: number, height: number, threshold: number, colour: Rgb = CONTOUR_COLOUR): void {
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (!(map[i] >= threshold)) continue;
      const edge =
        (x > 0 && map[i - 1] < threshold) ||
        (x < width - 1 && map[i + 1] < threshold) ||
        (y > 0 && map[i - width] < threshold) ||
        (y < height - 1 && map[i + width] < threshold);
      if (edge) put(rgb, i, colour);
    }
  }
}

/** Each box's outline, `line` px wide, drawn inside the box and clipped to the image. */
export function drawBoxes(rgb: Uint8Array, width: number, height: number, boxes: readonly Box[], colour: Rgb = REGION_COLOUR, line = REGION_LINE): void {
  for (const b of boxes) {
    const x0 = Math.max(0, Math.floor(b.x));
    const y0 = Math.max(0, Math.floor(b.y));
    const x1 = Math.min(width - 1, Math.floor(b.x + b.w) - 1);
    const y1 = Math.min(height - 1, Math.floor(b.y + b.h) - 1);
    if (x1 < x0 || y1 < y0) continue;
    for (let y = y0; y <= y1; y++) {
      const onEdgeRow = y < y0 + line || y > y1 - line;
      if (onEdgeRow) {
        for (let x = x0; x <= x1; x++) put(rgb, y * width + x, colour);
      } else {
        for (let x = x0; x < Math.min(x0 + line, x1 + 1); x++) put(rgb, y * width + x, colour);
        for (let x = Math.max(x1 - line + 1, x0); x <= x1; x++) put(rgb, y * width + x, colour);
      }
    }
  }
}
