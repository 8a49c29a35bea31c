// Images for batch tests: one seeded texture, each copy with its own slight noise, and the same
// with a pasted bright patch (an anomaly no other image of the batch has).
import sharp from 'sharp';

/** A 64×64 PNG: diagonal stripes with seeded noise; `patch` pastes a white 16×16 square. */
export async function texturePng(seed: number, patch = false): Promise<Buffer> {
  const w = 64;
  const h = 64;
  const rgb = Buffer.alloc(w * h * 3);
  let s = seed * 2654435761 + 1;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const base = (x + y) % 8 < 4 ? 90 : 150;
      const v = Math.max(0, Math.min(255, Math.round(base + (rand() - 0.5) * 20)));
      const i = (y * w + x) * 3;
      rgb[i] = v;
      rgb[i + 1] = v;
      rgb[i + 2] = Math.round(v * 0.8);
      if (patch && x >= 24 && x < 40 && y >= 16 && y < 32) rgb.fill(255, i, i + 3);
    }
  }
  return sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}
