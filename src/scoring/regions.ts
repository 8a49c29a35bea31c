// Suspect regions: 8-connected components of {map > threshold} (imaging/components.ts), as
// boxes with statistics.
import { labelRuns } from '../imaging/components.ts';

export interface RegionBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Region {
  /** Bounding box in pixels; x, y is the top-left pixel. */
  bbox: RegionBox;
  /** Pixels in the component. */
  area: number;
  /** area / (width · height). */
  areaFraction: number;
  /** Highest map value in the component. */
  peak: number;
  meanScore: number;
}

export interface RegionOptions {
  /** Components smaller than this fraction of the image are dropped. Default 0 (keep all). */
  minAreaFraction: number;
  /** At most this many regions, the highest peaks first. Default 10: enough for a report. */
  maxRegions: number;
}

export const defaultRegionOptions: RegionOptions = { minAreaFraction: 0, maxRegions: 10 };

/** Connected components of `map` ([height, width]) above `threshold`, sorted by peak (descending). */
export function findRegions(
  map: Float32Array,
  width: number,
  height: number,
  threshold: number,
  options: Partial<RegionOptions> = {},
): Region[] {
  const { minAreaFraction, maxRegions } = { ...defaultRegionOptions, ...options };
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`findRegions: bad size ${width}x${height}`);
  }
  if (map.length < width * height) throw new RangeError(`findRegions: need ${width}x${height} values`);

  const runs = labelRuns(map, width, height, { above: threshold });

  // Accumulate per component, runs in raster order and each run left to right.
  const stats: Array<{ minX: number; maxX: number; minY: number; maxY: number; area: number; sum: number; peak: number }> = [];
  for (let r = 0; r < runs.count; r++) {
    const x0 = runs.x0[r];
    const x1 = runs.x1[r];
    const y = runs.row[r];
    const base = y * width;
    let sum = 0;
    let peak = -Infinity;
    for (let x = x0; x <= x1; x++) {
      const v = map[base + x];
      sum += v;
      if (v > peak) peak = v;
    }
    const s = stats[runs.component[r]];
    if (s === undefined) {
      stats[runs.component[r]] = { minX: x0, maxX: x1, minY: y, maxY: y, area: x1 - x0 + 1, sum, peak };
    } else {
      if (x0 < s.minX) s.minX = x0;
      if (x1 > s.maxX) s.maxX = x1;
      if (y < s.minY) s.minY = y;
      if (y > s.maxY) s.maxY = y;
      s.area += x1 - x0 + 1;
      s.sum += sum;
      if (peak > s.peak) s.peak = peak;
    }
  }

  const total = width * height;
  const regions: Region[] = [];
  for (const s of stats) {
    const areaFraction = s.area / total;
    if (areaFraction < minAreaFraction) continue;
    regions.push({
      bbox: { x: s.minX, y: s.minY, w: s.maxX - s.minX + 1, h: s.maxY - s.minY + 1 },
      area: s.area,
      areaFraction,
      peak: s.peak,
      meanScore: s.sum / s.area,
    });
  }
  // Highest peak first; equal peaks: the larger region first.
  regions.sort((a, b) => b.peak - a.peak || b.area - a.area);
  return regions.slice(0, Math.max(0, maxRegions));
}
