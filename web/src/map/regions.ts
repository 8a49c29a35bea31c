// Suspect regions in the browser: 8-connected components of {value > threshold} on the
// upsampled map (the server's rule), so the threshold slider needs no new request.

export interface MapRegion {
  /** Box in image pixels. */
  bbox: { x: number; y: number; w: number; h: number };
  /** Pixels of the working map in the component. */
  area: number;
  areaFraction: number;
  peak: number;
  meanScore: number;
}

/**
 * Components of `values` (width × height) above `threshold`, highest peak first, with boxes
 * scaled to an image of imageWidth × imageHeight (the map may be a scaled-down working copy).
 */
export function findRegions(
  values: Float32Array,
  width: number,
  height: number,
  threshold: number,
  imageWidth = width,
  imageHeight = height,
): MapRegion[] {
  const n = width * height;
  const parent = new Int32Array(n).fill(-1);
  const find = (i: number): number => {
    let root = i;
    while (parent[root] !== root) root = parent[root];
    while (parent[i] !== root) {
      const next = parent[i];
      parent[i] = root;
      i = next;
    }
    return root;
  };
  const union = (a: number, b: number) => {
    const ra = find(a);
    const rb = find(b);
    if (ra < rb) parent[rb] = ra;
    else if (rb < ra) parent[ra] = rb;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!(values[i] > threshold)) continue;
      parent[i] = i;
      // Neighbours already visited: left, and the three above (8-connectivity).
      if (x > 0 && parent[i - 1] >= 0) union(i, i - 1);
      if (y > 0) {
        const up = i - width;
        if (parent[up] >= 0) union(i, up);
        if (x > 0 && parent[up - 1] >= 0) union(i, up - 1);
        if (x < width - 1 && parent[up + 1] >= 0) union(i, up + 1);
      }
    }
  }
  const stats = new Map<number, { x0: number; x1: number; y0: number; y1: number; area: number; sum: number; peak: number }>();
  for (let i = 0; i < n; i++) {
    if (parent[i] < 0) continue;
    const root = find(i);
    const x = i % width;
    const y = (i - x) / width;
    const v = values[i];
    const s = stats.get(root);
    if (!s) {
      stats.set(root, { x0: x, x1: x, y0: y, y1: y, area: 1, sum: v, peak: v });
      continue;
    }
    if (x < s.x0) s.x0 = x;
    if (x > s.x1) s.x1 = x;
    if (y > s.y1) s.y1 = y;
    s.area++;
    s.sum += v;
    if (v > s.peak) s.peak = v;
  }
  const sx = imageWidth / width;
  const sy = imageHeight / height;
  const regions: MapRegion[] = [];
  for (const s of stats.values()) {
    const x = Math.floor(s.x0 * sx);
    const y = Math.floor(s.y0 * sy);
    regions.push({
      bbox: { x, y, w: Math.min(imageWidth, Math.ceil((s.x1 + 1) * sx)) - x, h: Math.min(imageHeight, Math.ceil((s.y1 + 1) * sy)) - y },
      area: s.area,
      areaFraction: s.area / n,
      peak: s.peak,
      meanScore: s.sum / s.area,
    });
  }
  regions.sort((a, b) => b.peak - a.peak || b.area - a.area);
  return regions;
}
