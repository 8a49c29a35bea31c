// 8-connected components of the foreground of a 2-D array, for the suspect regions of a map
// (scoring/regions.ts: map > threshold) and the ground-truth defects of AUPRO (eval/metrics.ts:
// mask nonzero).
//
// Run-based union-find: each row is cut into runs of consecutive foreground pixels, and a run
// is joined with the runs of the row above that touch it (8-connectivity: x ranges overlapping
// after widening by one). Memory grows with the number of runs, not pixels, and nothing
// recurses, so 4000×3000 maps are fine.

/** Which pixels belong to components: values above a threshold, or every nonzero value. */
export type Foreground = { above: number } | 'nonzero';

/** The runs of a labelled image, in raster order, each with its component. */
export interface ComponentRuns {
  /** Number of runs. */
  count: number;
  row: Int32Array;
  x0: Int32Array;
  /** Last pixel of the run (inclusive). */
  x1: Int32Array;
  /** Component of each run: 0 … components − 1, in raster order of each component's first pixel. */
  component: Int32Array;
  components: number;
}

/** Growable parallel arrays of runs with their union-find parents. */
class Runs {
  count = 0;
  row: Int32Array = new Int32Array(1024);
  x0: Int32Array = new Int32Array(1024);
  x1: Int32Array = new Int32Array(1024);
  parent: Int32Array = new Int32Array(1024);

  push(row: number, x0: number, x1: number): number {
    if (this.count === this.row.length) this.grow();
    const r = this.count++;
    this.row[r] = row;
    this.x0[r] = x0;
    this.x1[r] = x1;
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
    // The older run becomes the root, so a component's root is its first run.
    if (ra < rb) this.parent[rb] = ra;
    else if (rb < ra) this.parent[ra] = rb;
  }

  private grow(): void {
    const size = this.row.length * 2;
    const grow = (a: Int32Array): Int32Array => {
      const b = new Int32Array(size);
      b.set(a);
      return b;
    };
    this.row = grow(this.row);
    this.x0 = grow(this.x0);
    this.x1 = grow(this.x1);
    this.parent = grow(this.parent);
  }
}

/** The 8-connected components of the foreground of `values` ([height, width] row-major). */
export function labelRuns(values: ArrayLike<number>, width: number, height: number, foreground: Foreground): ComponentRuns {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`labelRuns: bad size ${width}x${height}`);
  }
  if (values.length < width * height) throw new RangeError(`labelRuns: need ${width}x${height} values`);
  const nonzero = foreground === 'nonzero';
  const threshold = nonzero ? 0 : foreground.above;
  // NaN is never foreground: it fails both tests. (A loop-invariant branch, not a callback:
  // this runs on every pixel of every map.)

  const runs = new Runs();
  let prevStart = 0; // runs of the previous row are [prevStart, prevEnd)
  let prevEnd = 0;
  for (let y = 0; y < height; y++) {
    const rowStart = runs.count;
    const base = y * width;
    let p = prevStart; // runs of the row above ending left of this run can never touch later runs
    let x = 0;
    while (x < width) {
      const v = values[base + x];
      if (!(nonzero ? v !== 0 && v === v : v > threshold)) {
        x++;
        continue;
      }
      const x0 = x;
      for (x++; x < width; x++) {
        const u = values[base + x];
        if (!(nonzero ? u !== 0 && u === u : u > threshold)) break;
      }
      const x1 = x - 1;
      const r = runs.push(y, x0, x1);
      // Touching runs above: [x0', x1'] intersects [x0 - 1, x1 + 1].
      while (p < prevEnd && runs.x1[p] < x0 - 1) p++;
      for (let q = p; q < prevEnd && runs.x0[q] <= x1 + 1; q++) runs.union(r, q);
    }
    prevStart = rowStart;
    prevEnd = runs.count;
  }

  // Number the components by their first run, which is their first pixel in raster order.
  const component = new Int32Array(runs.count);
  const idOfRoot = new Int32Array(runs.count).fill(-1);
  let components = 0;
  for (let r = 0; r < runs.count; r++) {
    const root = runs.find(r);
    if (idOfRoot[root] < 0) idOfRoot[root] = components++;
    component[r] = idOfRoot[root];
  }
  return { count: runs.count, row: runs.row, x0: runs.x0, x1: runs.x1, component, components };
}

/** Per pixel: 0 for background, 1 … components for the component it belongs to. */
export function labelImage(runs: ComponentRuns, width: number, height: number): Int32Array {
  const labels = new Int32Array(width * height);
  for (let r = 0; r < runs.count; r++) {
    const base = runs.row[r] * width;
    labels.fill(runs.component[r] + 1, base + runs.x0[r], base + runs.x1[r] + 1);
  }
  return labels;
}
