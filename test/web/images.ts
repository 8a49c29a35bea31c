// Images the browser tests upload: real parts from ../shared/data (MPDD metal plates) when that
// folder is there (SHARED_DATA_DIR names another), otherwise parts drawn with sharp. Scaled
// down so the tests stay quick.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';

export interface TestImage {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

const MPDD = join(process.env.SHARED_DATA_DIR ?? resolve(import.meta.dirname, '../../../shared/data'), 'mpdd/metal_plate/test');

async function drawn(name: string, seed: number, width = 320, height = 240): Promise<TestImage> {
  const spot = 20 + (seed % 4) * 12;
  const buffer = await sharp({ create: { width, height, channels: 3, background: { r: 120 + seed * 7, g: 124, b: 130 } } })
    .composite([
      { input: { create: { width: spot, height: spot, channels: 3, background: '#d23c28' } }, left: 40 + seed * 30, top: 60 + seed * 10 },
      { input: { create: { width: 60, height: 8, channels: 3, background: '#2b2b2b' } }, left: 180, top: 150 - seed * 12 },
    ])
    .png()
    .toBuffer();
  return { name, mimeType: 'image/png', buffer };
}

async function shared(kind: 'good' | 'defect', index: number): Promise<TestImage | null> {
  const folder = join(MPDD, kind);
  if (!existsSync(folder)) return null;
  const files = readdirSync(folder).filter((f) => f.endsWith('.png')).sort();
  const file = files[index % files.length];
  if (!file) return null;
  const buffer = await sharp(join(folder, file)).resize({ width: 384 }).jpeg({ quality: 88 }).toBuffer();
  return { name: `${kind}-${file.replace('.png', '.jpg')}`, mimeType: 'image/jpeg', buffer };
}

export const usingSharedData = existsSync(MPDD);

/** A defect image (or a drawn part with a red spot). */
export async function defectImage(index = 0): Promise<TestImage> {
  return (await shared('defect', index)) ?? drawn(`part-${index}.png`, index);
}

/** A normal image (or a drawn part). */
export async function normalImage(index = 0): Promise<TestImage> {
  return (await shared('good', index)) ?? drawn(`normal-${index}.png`, index + 4);
}
