// A synthetic MVTec-layout dataset made with sharp for the training tests: grey noise texture,
// defects are planted patterns (a bright square with a dark core) with exact masks.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { seededRandom } from '../../src/util/rng.ts';

export const SIZE = 64;

export interface Planted {
  x: number;
  y: number;
  side: number;
}

/** Texture (grey noise) with the planted patterns drawn in. */
export function syntheticImage(defects: Planted[], seed: number): Buffer {
  const random = seededRandom(seed);
  const rgb = Buffer.alloc(SIZE * SIZE * 3);
  for (let i = 0; i < SIZE * SIZE; i++) {
    const v = 100 + Math.floor(random() * 40);
    rgb[i * 3] = v;
    rgb[i * 3 + 1] = v;
    rgb[i * 3 + 2] = v;
  }
  for (const d of defects) {
    for (let y = d.y; y < d.y + d.side; y++) {
      for (let x = d.x; x < d.x + d.side; x++) {
        const core = x >= d.x + d.side / 4 && x < d.x + (3 * d.side) / 4 && y >= d.y + d.side / 4 && y < d.y + (3 * d.side) / 4;
        const o = (y * SIZE + x) * 3;
        rgb[o] = core ? 20 : 250;
        rgb[o + 1] = core ? 20 : 240;
        rgb[o + 2] = core ? 200 : 40;
      }
    }
  }
  return rgb;
}

export function syntheticMask(defects: Planted[]): Buffer {
  const m = Buffer.alloc(SIZE * SIZE);
  for (const d of defects) for (let y = d.y; y < d.y + d.side; y++) m.fill(255, y * SIZE + d.x, y * SIZE + d.x + d.side);
  return m;
}

/**
 * <root>/<category>/test/{good,planted}/NNN.png and ground_truth/planted/NNN_mask.png:
 * `good` texture-only images and `defective` images with one planted square each.
 */
export async function writeSyntheticCategory(root: string, category: string, good: number, defective: number, seed: number): Promise<void> {
  const random = seededRandom(seed);
  const write = async (file: string, raw: Buffer, channels: 1 | 3) => {
    mkdirSync(dirname(file), { recursive: true });
    const img = sharp(raw, { raw: { width: SIZE, height: SIZE, channels } });
    await (channels === 1 ? img.toColourspace('b-w') : img).png().toFile(file);
  };
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < good; i++) jobs.push(write(join(root, category, 'test', 'good', `${String(i).padStart(3, '0')}.png`), syntheticImage([], seed * 1000 + i), 3));
  for (let i = 0; i < defective; i++) {
    const side = 16;
    const defect = { x: Math.floor(random() * (SIZE - side)), y: Math.floor(random() * (SIZE - side)), side };
    const name = String(i).padStart(3, '0');
    jobs.push(write(join(root, category, 'test', 'planted', `${name}.png`), syntheticImage([defect], seed * 1000 + 500 + i), 3));
    jobs.push(write(join(root, category, 'ground_truth', 'planted', `${name}_mask.png`), syntheticMask([defect]), 1));
  }
  await Promise.all(jobs);
}
