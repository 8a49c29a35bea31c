// Default dense-feature layers and dense-path start for a tower of a given depth.

/** 6,9,12 of 12 and 6,12,18,24 of 24 (AnomalyCLIP / APRIL-GAN practice); half, 3/4, last otherwise. */
export function defaultDenseLayers(layers: number): number[] {
  if (layers === 12) return [6, 9, 12];
  if (layers >= 16 && layers % 4 === 0) return [layers / 4, layers / 2, (3 * layers) / 4, layers];
  return [...new Set([Math.max(1, Math.round(layers / 2)), Math.max(1, Math.round((3 * layers) / 4)), layers])];
}

/** The dense path covers the last third of the blocks (method.md §2). */
export function defaultDenseStart(layers: number): number {
  return layers - Math.floor(layers / 3) + 1;
}
