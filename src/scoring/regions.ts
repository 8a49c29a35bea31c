// Suspect regions: 8-connected components of {map > threshold}, as boxes with statistics.
//
// Run-based union-find: each row is cut into runs of consecutive pixels above the threshold,
// and a run is joined with the runs of the row above that touch it (8-connectivity: x ranges
// overlapping after widening by one). Memory grows with the number of runs, not pixels, and
// nothing recurses, so 4000×3000 maps are fine.

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

/** Growable parallel arrays of runs. */
class Runs {
  count = 0;
  row: Int32Array = new Int32Array(1024);
  x0: Int32Array = new Int32Array(1024);
  x1: Int32Array = new Int32Array(1024); // inclusive
  sum: Float64Array = new Float64Array(1024);
  peak: Float64Array = new Float64Array(1024);
  parent: Int32Array = new Int32Array(1024);

  push(row: number, x0: number, x1: number, sum: number, peak: number): number {
    if (this.count === this.row.length) this.grow();
    const r = this.count++;
    this.row[r] = row;
    this.x0[r] = x0;
    this.x1[r] = x1;
    this.sum[r] = sum;
    this.peak[r] = peak;
    this.parent[r] = r;
    return r;
  }

  find(r: number): number {
    let root = r;
    while (this.parent[root] !== root) root = this.parent[root];
    // Path compression keeps later finds near O(1).
    while (this.parent[r] !== root) {
      const next = this.parent[r];
      this.parent[r] = root;
      r = next;
    }
    return root;
  }

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    // The older run becomes the root, so roots stay stable while scanning.
    if (ra < rb) this.parent[rb] = ra;
    else if (rb < ra) this.parent[ra] = rb;
  }

  private grow(): void {
    const size = this.row.length * 2;
    const grow32 = (a: Int32Array): Int32Array => {
      const b = new Int32Array(size);
      b.set(a);
      return b;
    };
    const grow64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(size);
      b.set(a);
      return b;
    };
    this.row = grow32(this.row);
    this.x0 = grow32(this.x0);
    this.x1 = grow32(this.x1);
    this.parent = grow32(this.parent);
    this.sum = grow64(this.sum);
    this.peak = grow64(this.peak);
  }
}

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

  const runs = new Runs();
  let prevStart = 0; // runs of the previous row are [prevStart, prevEnd)
  let prevEnd = 0;
  for (let y = 0; y < height; y++) {
    const rowStart = runs.count;
    const base = y * width;
    let p = prevStart; // runs of the row above ending left of this run can never touch later runs
    let x = 0;
    while (x < width) {
      if (!(map[base + x] > threshold)) {
        x++;
        continue;
      }
      const x0 = x;
      let sum = 0;
      let peak = -Infinity;
      while (x < width && map[base + x] > threshold) {
        const v = map[base + x];
        sum += v;
        if (v > peak) peak = v;
        x++;
      }
      const x1 = x - 1;
      const r = runs.push(y, x0, x1, sum, peak);
      // Touching runs above: [x0', x1'] intersects [x0 - 1, x1 + 1].
      while (p < prevEnd && runs.x1[p] < x0 - 1) p++;
      for (let q = p; q < prevEnd && runs.x0[q] <= x1 + 1; q++) runs.union(r, q);
    }
    prevStart = rowStart;
    prevEnd = runs.count;
  }

  // Accumulate per component root.
  const stats = new Map<number, { minX: number; maxX: number; minY: number; maxY: number; area: number; sum: number; peak: number }>();
  for (let r = 0; r < runs.count; r++) {
    const root = runs.find(r);
    const length = runs.x1[r] - runs.x0[r] + 1;
    const s = stats.get(root);
    if (s === undefined) {
      stats.set(root, {
        minX: runs.x0[r],
        maxX: runs.x1[r],
        minY: runs.row[r],
        maxY: runs.row[r],
        area: length,
        sum: runs.sum[r],
        peak: runs.peak[r],
      });
    } else {
      if (runs.x0[r] < s.minX) s.minX = runs.x0[r];
      if (runs.x1[r] > s.maxX) s.maxX = runs.x1[r];
      if (runs.row[r] < s.minY) s.minY = runs.row[r];
      if (runs.row[r] > s.maxY) s.maxY = runs.row[r];
      s.area += length;
      s.sum += runs.sum[r];
      if (runs.peak[r] > s.peak) s.peak = runs.peak[r];
    }
  }

  const total = width * height;
  const regions: Region[] = [];
  for (const s of stats.values()) {
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
