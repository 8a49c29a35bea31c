// From a method's outcome to the API's answer: maps rendered in the form asked for, the
// verdict, regions, summary, model and timings.
import type { DecodedImage } from '../imaging/decode.ts';
import { summarize } from '../scoring/summary.ts';
import { InternalError } from '../errors.ts';
import { renderPngs, type MapToRender, type RenderPayload } from './render-task.ts';
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

/**
 * Draws PNG maps (heatmaps or overlays): in an inference worker (createClipDetector) or on
 * this thread. `transfer` lists the payload's buffers that may be moved rather than copied.
 */
export type MapRenderer = (payload: RenderPayload, transfer: ArrayBuffer[]) => Promise<string[]>;

/** Rendering on the calling thread (a detector without the render task in its workers). */
export const renderOnThisThread: MapRenderer = (payload) => renderPngs(payload);

/** The patch grid's values, rounded to 6 decimals. */
function gridPayload(grid: Float32Array | undefined, gridSize: number): MapPayload | null {
  if (!grid) return null;
  return { type: 'grid', width: gridSize, height: gridSize, values: Array.from(grid, (v) => Math.round(v * 1e6) / 1e6) };
}

/** A buffer a typed array owns whole can be moved; a view into a larger one is copied instead. */
function movable(a: ArrayBufferView): ArrayBuffer | undefined {
  const b = a.buffer;
  return b instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === b.byteLength ? b : undefined;
}

/**
 * The fused map and, with `branches`, each part's score and map (the frequency branches of
 * dense-frequency; no boxes: regions are the fused map's), in the form asked for. PNGs are
 * drawn in one `render` call: the image's pixels travel once for all of them. The outcome's
 * image-size maps are moved to the renderer: the caller must not read them afterwards.
 */
export async function renderMaps(
  kind: MapKind,
  image: DecodedImage,
  outcome: MethodOutcome,
  gridSize: number,
  style: MapStyle,
  branches: boolean,
  render: MapRenderer,
): Promise<{ map: MapPayload | null; branches?: DetectResponse['branches'] }> {
  const scores = branches ? outcome.branchImageScores : undefined;
  const parts = Object.entries(scores ?? {});
  if (kind === 'none' || kind === 'grid') {
    const one = (g: Float32Array | undefined) => (kind === 'grid' ? gridPayload(g, gridSize) : null);
    return {
      map: one(outcome.grid.fused),
      branches: scores ? Object.fromEntries(parts.map(([name, score]) => [name, { score, map: one(outcome.grid[name]) }])) : undefined,
    };
  }
  const maps: MapToRender[] = [];
  const slot = (m: Float32Array | undefined, threshold: number, regions?: readonly Region[]) => {
    if (!m) return -1;
    maps.push({ map: m, threshold, regions: regions?.map((r) => r.bbox) });
    return maps.length - 1;
  };
  const fused = slot(outcome.map, style.threshold, kind === 'overlay' ? (style.regions ?? []) : undefined);
  const partSlots = parts.map(([name]) => slot(outcome.branchMaps?.[name], style.threshold));
  const payload: RenderPayload = { kind, width: image.width, height: image.height, maps, ...(kind === 'overlay' ? { rgb: image.rgb } : {}) };
  const transfer = new Set<ArrayBuffer>();
  for (const m of maps) {
    const b = movable(m.map);
    if (b) transfer.add(b);
  }
  const pngs = maps.length ? await render(payload, [...transfer]) : [];
  const png = (i: number): MapPayload | null =>
    i < 0 ? null : { type: kind, width: image.width, height: image.height, encoding: 'base64', mime: 'image/png', data: pngs[i] };
  return {
    map: png(fused),
    branches: scores ? Object.fromEntries(parts.map(([name, score], i) => [name, { score, map: png(partSlots[i]) }])) : undefined,
  };
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
  /** The level regions were found at; default `threshold`. */
  regionThreshold?: number;
  calibrationNotUsed?: { reason: string; summary: string };
  /** The method's scores compare the images of one batch (MuSc): said in the summary. */
  batchRelative?: boolean;
  timingsMs: { decode: number; encode: number; score: number; render: number; total: number };
}

export function buildResponse(p: ResponseParts): DetectResponse {
  const { outcome, image } = p;
  // A NaN score would compare as normal (NaN >= t is false) and find no region: a verdict a
  // client would act on, from a fault (broken weights or features). Refused instead.
  if (!Number.isFinite(outcome.score)) throw new InternalError(`the ${p.method} method produced a non-finite score (${outcome.score}): no verdict can be given`);
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
      ...(p.calibrationNotUsed ? { thresholdNote: p.calibrationNotUsed.summary } : {}),
      ...(p.batchRelative ? { scoreNote: 'relative to this batch' } : {}),
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
    regionThreshold: p.regionThreshold ?? p.threshold,
  };
  if (p.calibrationNotUsed) response.calibrationNotUsed = p.calibrationNotUsed.reason;
  if (p.branches) response.branches = p.branches;
  return response;
}

export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
