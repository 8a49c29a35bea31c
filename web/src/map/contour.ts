// The threshold contour: marching squares on the map at the threshold, as line segments in map
// pixel coordinates (pixel centres at x + 0.5). Outside the map counts as below the threshold,
// so a region at the border gets a closed outline.

/** Segments as [x1, y1, x2, y2, …] in map pixels. */
export function contourSegments(values: Float32Array, width: number, height: number, threshold: number): Float32Array<ArrayBuffer> {
  const out: number[] = [];
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? -Infinity : values[y * width + x]);
  // Where the level crosses between two samples (a, b) at positions p, p + 1.
  const cross = (a: number, b: number) => {
    // Against the outside: on the map's edge, half-way between the two sample positions.
    if (!Number.isFinite(a) || !Number.isFinite(b)) return 0.5;
    return b === a ? 0.5 : Math.min(1, Math.max(0, (threshold - a) / (b - a)));
  };
  for (let y = -1; y < height; y++) {
    for (let x = -1; x < width; x++) {
      const tl = at(x, y);
      const tr = at(x + 1, y);
      const br = at(x + 1, y + 1);
      const bl = at(x, y + 1);
      const code = (tl > threshold ? 8 : 0) | (tr > threshold ? 4 : 0) | (br > threshold ? 2 : 0) | (bl > threshold ? 1 : 0);
      if (code === 0 || code === 15) continue;
      const cx = x + 0.5;
      const cy = y + 0.5;
      const top = [cx + cross(tl, tr), cy];
      const right = [cx + 1, cy + cross(tr, br)];
      const bottom = [cx + cross(bl, br), cy + 1];
      const left = [cx, cy + cross(tl, bl)];
      const seg = (a: number[], b: number[]) => out.push(a[0], a[1], b[0], b[1]);
      switch (code) {
        case 1:
        case 14:
          seg(left, bottom);
          break;
        case 2:
        case 13:
          seg(bottom, right);
          break;
        case 3:
        case 12:
          seg(left, right);
          break;
        case 4:
        case 11:
          seg(top, right);
          break;
        case 6:
        case 9:
          seg(top, bottom);
          break;
        case 7:
        case 8:
          seg(left, top);
          break;
        case 5:
        case 10: {
          // Saddle: the centre's value decides which corners connect.
          const centre = (tl + tr + br + bl) / 4;
          const joined = centre > threshold;
          if ((code === 5) === joined) {
            seg(left, top);
            seg(bottom, right);
          } else {
            seg(left, bottom);
            seg(top, right);
          }
          break;
        }
      }
    }
  }
  return Float32Array.from(out);
}
