// One anomaly map as the page holds it: the grid upsampled to the working size, and what the
// threshold makes of it (colours, regions, contour), recomputed in the browser on demand.
import { upsampleBilinear, workingSize, type ValueMap } from './upsample.ts';
import { paintMap } from './colour-scale.ts';
import { findRegions, type MapRegion } from './regions.ts';
import { contourSegments } from './contour.ts';

export interface GridInput {
  width: number;
  height: number;
  values: ArrayLike<number>;
}

export class MapLayer {
  readonly map: ValueMap;
  /** The coloured map at the working size, for drawImage. */
  readonly heat: HTMLCanvasElement;
  threshold = NaN;
  regions: MapRegion[] = [];
  contour: Float32Array<ArrayBuffer> = new Float32Array(0);

  constructor(
    grid: GridInput,
    readonly imageWidth: number,
    readonly imageHeight: number,
  ) {
    const size = workingSize(imageWidth, imageHeight);
    this.map = upsampleBilinear(grid.values, grid.width, grid.height, size.width, size.height);
    this.heat = document.createElement('canvas');
    this.heat.width = size.width;
    this.heat.height = size.height;
  }

  setThreshold(threshold: number): void {
    if (threshold === this.threshold) return;
    this.threshold = threshold;
    const { width, height, values } = this.map;
    const pixels = paintMap(values, threshold);
    this.heat.getContext('2d')!.putImageData(new ImageData(pixels, width, height), 0, 0);
    this.regions = findRegions(values, width, height, threshold, this.imageWidth, this.imageHeight);
    this.contour = contourSegments(values, width, height, threshold);
  }
}
