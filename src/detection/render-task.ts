// Map rendering as a worker task: colour scale, overlay blend, contour, boxes, legend and PNG
// encoding run in an inference worker, so a 49-megapixel overlay never holds the HTTP thread
// (the upsampling, blur and regions already ran in the method's own task). One message carries
// the image's pixels once (moved, not copied) and every map drawn over it (the fused map and
// the branches); the PNGs come back as base64, the form the response sends them in.
// The detector registers this module with the runtime (createClipDetector), as methods
// register theirs: src/clip knows no detection code.
import type { TaskHandler } from '../clip/runtime/worker-protocol.ts';
import { renderHeatmapPng, renderOverlayPng } from '../imaging/heatmap.ts';
import type { Box } from '../imaging/overlay-marks.ts';

/** The file URL the runtime loads into every worker. */
export const RENDER_TASK_MODULE = new URL('./render-task.ts', import.meta.url).href;
export const RENDER_TASK = 'render-maps';

export interface MapToRender {
  /** [height, width], 0–1. */
  map: Float32Array;
  threshold: number;
  /** Region boxes (overlays only). */
  regions?: readonly Box[];
}

export interface RenderPayload {
  kind: 'png' | 'overlay';
  width: number;
  height: number;
  /** The image's RGB pixels: overlays only. */
  rgb?: Uint8Array;
  maps: MapToRender[];
}

/** Each map as a base64 PNG, in order, wherever it runs (a worker or, without workers, the caller's thread). */
export async function renderPngs(p: RenderPayload): Promise<string[]> {
  const out: string[] = [];
  for (const m of p.maps) {
    let png: Buffer;
    if (p.kind === 'png') png = await renderHeatmapPng(m.map, p.width, p.height, m.threshold);
    else {
      if (!p.rgb) throw new RangeError('an overlay needs the image pixels');
      const image = { width: p.width, height: p.height, rgb: Buffer.from(p.rgb.buffer, p.rgb.byteOffset, p.rgb.byteLength), format: 'raw' };
      png = await renderOverlayPng(image, m.map, { threshold: m.threshold, regions: m.regions ?? [] });
    }
    out.push(png.toString('base64'));
  }
  return out;
}

const renderTask: TaskHandler = async (_ctx, p: RenderPayload) => ({ result: await renderPngs(p) });

export const tasks: Record<string, TaskHandler> = { [RENDER_TASK]: renderTask };
