// From a method's outcome to the API's answer: maps rendered in the form asked for, the
// verdict, regions, summary, model and timings.
import type { DecodedImage } from '../imaging/decode.ts';
import { renderHeatmapPng, renderOverlayPng } from '../imaging/heatmap.ts';
import { summarize } from '../scoring/summary.ts';
import type { MethodOutcome } from '../methods/contract.ts';
import type { DetectResponse, MapKind, MapPayload, Region } from './types.ts';

/** What an image map is drawn with: the scale's threshold and, for overlays, the region boxes. */
export interface MapStyle {
  /** The map's threshold (the regions' level): the boundary colour, the contour. */
  threshold: number;
  regions?: readonly Region[];
}

export const RANDOM_MODEL_WARNING =
  'This is a generated model with random weights: the scores and maps show that the service works, not whether the part is defective.';

/** One map in the form asked for: none, the patch grid's values, or a PNG at the image size. */
export async function renderMap(
  kind: MapKind,
  image: DecodedImage,
  full: Float32Array | undefined,
  grid: Float32Array | undefined,
  gridSize: number,
  style: MapStyle,
): Promise<MapPayload | null> {
  if (kind === 'none') return null;
  if (kind === 'grid') {
    if (!grid) return null;
    return { type: 'grid', width: gridSize, height: gridSize, values: Array.from(grid, (v) => Math.round(v * 1e6) / 1e6) };
  }
  if (!full) return null;
  const png =
    kind === 'png'
      ? await renderHeatmapPng(full, image.width, image.height, style.threshold)
      : await renderOverlayPng(image, full, { threshold: style.threshold, regions: (style.regions ?? []).map((r) => r.bbox) });
  return { type: kind, width: image.width, height: image.height, encoding: 'base64', mime: 'image/png', data: png.toString('base64') };
}

/** Each part's score and map (the frequency branches of dense-frequency), when the method has parts; no boxes (regions are the fused map's). */
export async function renderParts(kind: MapKind, image: DecodedImage, outcome: MethodOutcome, gridSize: number, threshold: number): Promise<DetectResponse['branches']> {
  const scores = outcome.branchImageScores;
  if (!scores) return undefined;
  const parts: NonNullable<DetectResponse['branches']> = {};
  for (const [name, score] of Object.entries(scores)) {
    parts[name] = { score, map: await renderMap(kind, image, outcome.branchMaps?.[name], outcome.grid[name], gridSize, { threshold }) };
  }
  return parts;
}

export interface ResponseParts {
  category: string;
  method: string;
  threshold: number;
  image: DecodedImage;
  outcome: MethodOutcome;
  map: MapPayload | null;
  branches?: DetectResponse['branches'];
  model: { id: string; generated: boolean; precision?: 'fp32' | 'int8' };
  thresholdSource?: 'request' | 'category calibration' | 'default';
  timingsMs: { decode: number; encode: number; score: number; render: number; total: number };
}

export function buildResponse(p: ResponseParts): DetectResponse {
  const { outcome, image } = p;
  const isAnomalous = outcome.score >= p.threshold;
  const response: DetectResponse = {
    category: p.category,
    method: p.method,
    score: outcome.score,
    isAnomalous,
    threshold: p.threshold,
    regions: outcome.regions.map((r) => ({ bbox: r.bbox, areaFraction: r.areaFraction, peak: r.peak, meanScore: r.meanScore })),
    summary: summarize({
      category: p.category,
      score: outcome.score,
      threshold: p.threshold,
      isAnomalous,
      regions: outcome.regions,
      width: image.width,
      height: image.height,
      thresholdSource: p.thresholdSource,
    }),
    image: { width: image.width, height: image.height },
    map: p.map,
    model: {
      id: p.model.id,
      generatedRandomModel: p.model.generated,
      ...(p.model.precision ? { precision: p.model.precision } : {}),
      ...(p.model.generated ? { warning: RANDOM_MODEL_WARNING } : {}),
    },
    timingsMs: p.timingsMs,
  };
  if (p.branches) response.branches = p.branches;
  return response;
}

export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
