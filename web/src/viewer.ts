// Draws an image with its anomaly layer on a canvas sized to the page: the heat map, the
// threshold contour and the region boxes, redrawn when the canvas changes size.
import { h } from './dom.ts';
import type { MapLayer } from './map/layer.ts';

export interface Layers {
  heat: boolean;
  contour: boolean;
  boxes: boolean;
}

export const REGION_COLOUR = '#00e5ff';

export class MapCanvas {
  readonly canvas: HTMLCanvasElement;
  private layer: MapLayer | null = null;
  private image: ImageBitmap | null = null;
  layers: Layers = { heat: true, contour: true, boxes: true };
  private readonly resize: ResizeObserver;

  constructor(label: string, testId?: string) {
    this.canvas = h('canvas', { class: 'map-canvas', role: 'img', 'aria-label': label, 'data-testid': testId });
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.canvas);
  }

  /** Stops watching the canvas size (call when the canvas is thrown away). */
  dispose(): void {
    this.resize.disconnect();
  }

  show(image: ImageBitmap | null, layer: MapLayer, minCssWidth = 760, maxVh = 72): void {
    this.image = image;
    this.layer = layer;
    this.canvas.style.aspectRatio = `${layer.imageWidth} / ${layer.imageHeight}`;
    // Small images are shown larger; tall ones no taller than most of the window.
    const aspect = layer.imageWidth / layer.imageHeight;
    this.canvas.style.maxWidth = `min(${Math.max(layer.imageWidth, minCssWidth)}px, calc(${maxVh}vh * ${aspect.toFixed(4)}))`;
    this.draw();
  }

  draw(): void {
    const layer = this.layer;
    if (!layer) return;
    const dpr = devicePixelRatio || 1;
    const cssW = this.canvas.clientWidth;
    if (cssW === 0) return; // hidden: drawn when shown (the observer fires)
    const w = Math.round(cssW * dpr);
    const hgt = Math.round((cssW * layer.imageHeight * dpr) / layer.imageWidth);
    if (this.canvas.width !== w || this.canvas.height !== hgt) {
      this.canvas.width = w;
      this.canvas.height = hgt;
    }
    const ctx = this.canvas.getContext('2d')!;
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.fillStyle = '#6b6f76';
    ctx.fillRect(0, 0, w, hgt);
    if (this.image) ctx.drawImage(this.image, 0, 0, w, hgt);
    if (this.layers.heat) ctx.drawImage(layer.heat, 0, 0, w, hgt);
    const sx = w / layer.map.width;
    const sy = hgt / layer.map.height;
    if (this.layers.contour && layer.contour.length) {
      ctx.beginPath();
      const c = layer.contour;
      for (let i = 0; i < c.length; i += 4) {
        ctx.moveTo(c[i] * sx, c[i + 1] * sy);
        ctx.lineTo(c[i + 2] * sx, c[i + 3] * sy);
      }
      ctx.lineCap = 'round';
      ctx.strokeStyle = 'rgba(0, 0, 0, 0.75)';
      ctx.lineWidth = 3.5 * dpr;
      ctx.stroke();
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = 1.5 * dpr;
      ctx.stroke();
    }
    if (this.layers.boxes) this.drawBoxes(ctx, layer, w / layer.imageWidth, hgt / layer.imageHeight, dpr);
    this.canvas.dataset.ready = 'true';
  }

  private drawBoxes(ctx: CanvasRenderingContext2D, layer: MapLayer, sx: number, sy: number, dpr: number): void {
    ctx.font = `${Math.round(12 * dpr)}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    layer.regions.forEach((r, i) => {
      const x = r.bbox.x * sx;
      const y = r.bbox.y * sy;
      const bw = r.bbox.w * sx;
      const bh = r.bbox.h * sy;
      ctx.strokeStyle = 'rgba(0, 0, 0, 0.8)';
      ctx.lineWidth = 4 * dpr;
      ctx.strokeRect(x, y, bw, bh);
      ctx.strokeStyle = REGION_COLOUR;
      ctx.lineWidth = 2 * dpr;
      ctx.strokeRect(x, y, bw, bh);
      const label = String(i + 1);
      const pad = 3 * dpr;
      const tw = ctx.measureText(label).width + 2 * pad;
      const th = 14 * dpr + pad;
      const ly = y >= th ? y - th : y;
      ctx.fillStyle = REGION_COLOUR;
      ctx.fillRect(x, ly, tw, th);
      ctx.fillStyle = '#00242b';
      ctx.fillText(label, x + pad, ly + pad / 2 + dpr);
    });
  }
}
