// A float64 reference of MuSc written straight from the authors' formulas (github xrli-U/MuSc:
// models/modules/_LNAMD.py, _MSM.py, _RsCIN.py, models/musc.py), with plain loops and no
// chunking, sharing no code with src/methods/musc. Slow: for small test batches only.
//   LNAMD: LayerNorm over the whole [C, h, w] map (eps 1e-5, no affine) → zero-padded r×r mean
//          (Unfold + adaptive_avg_pool1d) → L2 normalisation.
//   MSM:   d_j(i, p) = min_q ‖z_ip − z_jq‖₂ (cdist), score = mean of the int(0.3·(N−1)) smallest.
//   maps:  mean over layers, then over r; image score = max of the align_corners=True upsample.
//   RsCIN: ŝ = min–max(s); W = F Fᵀ (F normalised); per k keep each row's k largest, row-normalise,
//          multiply ŝ; mean over k.

export interface ReferenceInput {
  /** tokens[i][l][p][c] */
  tokens: number[][][][];
  h: number;
  w: number;
  degrees: number[];
  imageSize: number;
  embeds?: number[][];
  kList?: number[];
}

export interface ReferenceOutput {
  /** lnamd[r-index][l][i][p][c] */
  lnamd: number[][][][][];
  maps: number[][];
  mapScores: number[];
  scores: number[];
}

function layerNorm(x: number[][]): number[][] {
  const values = x.flat();
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return x.map((row) => row.map((v) => (v - mean) / Math.sqrt(variance + 1e-5)));
}

function neighbourhoodMean(x: number[][], h: number, w: number, r: number): number[][] {
  const pad = (r - 1) / 2;
  const channels = x[0].length;
  const out: number[][] = [];
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      const v = new Array<number>(channels).fill(0);
      for (let ky = 0; ky < r; ky++) {
        for (let kx = 0; kx < r; kx++) {
          const sy = y + ky - pad;
          const sx = xx + kx - pad;
          if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue; // zero padding
          for (let c = 0; c < channels; c++) v[c] += x[sy * w + sx][c];
        }
      }
      out.push(v.map((s) => s / (r * r)));
    }
  }
  return out;
}

function unit(v: number[]): number[] {
  const n = Math.sqrt(v.reduce((a, b) => a + b * b, 0));
  return v.map((x) => x / n);
}

function euclid(a: number[], b: number[]): number {
  let s = 0;
  for (let c = 0; c < a.length; c++) s += (a[c] - b[c]) ** 2;
  return Math.sqrt(s);
}

function bilinearAlignCornersMax(map: number[], h: number, w: number, size: number): number {
  let best = -Infinity;
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      const sy = size === 1 ? 0 : (oy * (h - 1)) / (size - 1);
      const sx = size === 1 ? 0 : (ox * (w - 1)) / (size - 1);
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const y1 = Math.min(y0 + 1, h - 1);
      const x1 = Math.min(x0 + 1, w - 1);
      const fy = sy - y0;
      const fx = sx - x0;
      const v =
        map[y0 * w + x0] * (1 - fy) * (1 - fx) + map[y0 * w + x1] * (1 - fy) * fx + map[y1 * w + x0] * fy * (1 - fx) + map[y1 * w + x1] * fy * fx;
      best = Math.max(best, v);
    }
  }
  return best;
}

export function referenceRscin(scores: number[], embeds: number[][], kList: number[]): number[] {
  if (kList.includes(0)) return [...scores];
  const lo = Math.min(...scores);
  const hi = Math.max(...scores);
  const s = scores.map((v) => (v - lo) / (hi - lo));
  const f = embeds.map(unit);
  const n = scores.length;
  const W = f.map((a) => f.map((b) => a.reduce((acc, v, c) => acc + v * b[c], 0)));
  const perK = kList.map((k) =>
    W.map((row) => {
      const keep = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, Math.min(k, n));
      const masked = row.map((v, j) => (keep.includes(j) ? v : 0));
      const d = masked.reduce((a, b) => a + b, 0);
      return masked.reduce((acc, v, j) => acc + (v / d) * s[j], 0);
    }),
  );
  return scores.map((_, i) => perK.reduce((acc, col) => acc + col[i], 0) / kList.length);
}

export function referenceMusc(input: ReferenceInput): ReferenceOutput {
  const { tokens, h, w, degrees } = input;
  const N = tokens.length;
  const layers = tokens[0].length;
  const L = h * w;
  const k = Math.floor((N - 1) * 0.3);
  const lnamd = degrees.map((r) => tokens[0].map((_, l) => tokens.map((img) => neighbourhoodMean(layerNorm(img[l]), h, w, r).map(unit))));
  const maps: number[][] = tokens.map(() => new Array<number>(L).fill(0));
  degrees.forEach((_, d) => {
    const perLayer = lnamd[d].map((Z) =>
      Z.map((zi, i) =>
        zi.map((zp) => {
          const nearest: number[] = [];
          for (let j = 0; j < N; j++) {
            if (j === i) continue;
            nearest.push(Math.min(...Z[j].map((zq) => euclid(zp, zq))));
          }
          nearest.sort((a, b) => a - b);
          return nearest.slice(0, k).reduce((a, b) => a + b, 0) / k;
        }),
      ),
    );
    for (let i = 0; i < N; i++) {
      for (let p = 0; p < L; p++) {
        const layerMean = perLayer.reduce((acc, m) => acc + m[i][p], 0) / layers;
        maps[i][p] += layerMean / degrees.length;
      }
    }
  });
  const mapScores = maps.map((m) => bilinearAlignCornersMax(m, h, w, input.imageSize));
  const scores = input.embeds ? referenceRscin(mapScores, input.embeds, input.kList ?? [1, 2, 3]) : mapScores;
  return { lnamd, maps, mapScores, scores };
}
