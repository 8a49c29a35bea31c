// The darkness method's worker task: the map at the image size and a patch-grid version of it.
import type { TaskHandler } from '../../../../src/clip/runtime/worker-protocol.ts';
import type { RgbImage } from '../../../../src/imaging/decode.ts';
import type { MethodOutcome } from '../../../../src/methods/contract.ts';
import { findRegions } from '../../../../src/scoring/regions.ts';

export interface BrightnessPayload {
  image: RgbImage;
  grid: number;
  threshold: number;
}

export type BrightnessOutcome = MethodOutcome;

const darkness: TaskHandler = async (_ctx, p: BrightnessPayload) => {
  const { width, height, rgb } = p.image;
  const map = new Float32Array(width * height);
  for (let i = 0; i < map.length; i++) map[i] = 1 - (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]) / 255;
  const g = p.grid;
  const grid = new Float32Array(g * g);
  for (let y = 0; y < g; y++) for (let x = 0; x < g; x++) grid[y * g + x] = map[Math.floor(((y + 0.5) * height) / g) * width + Math.floor(((x + 0.5) * width) / g)];
  const score = map.reduce((m, v) => Math.max(m, v), 0);
  const result: BrightnessOutcome = { score, pImage: score, map, grid: { fused: grid }, regions: findRegions(map, width, height, p.threshold), encodeMs: 0, scoreMs: 0 };
  return { result, transfer: [map.buffer as ArrayBuffer] };
};

export const tasks: Record<string, TaskHandler> = { darkness };
