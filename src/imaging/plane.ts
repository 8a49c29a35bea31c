// Plain value types for 2-D data, so functions take one argument that knows its own shape
// instead of (data, height, width, …) lists whose order is easy to get wrong.

/** A float image of one channel (an anomaly map, a mask as 0/1): width × height values, row-major. */
export interface Plane {
  width: number;
  height: number;
  data: Float32Array;
}

/** Patch features on the model's grid: [gridH·gridW, dim], row index = y·gridW + x. */
export interface FeatureGrid {
  gridH: number;
  gridW: number;
  dim: number;
  data: Float32Array;
}

/** The same grid from several layers: [layers, gridH·gridW, dim]. */
export interface LayeredFeatureGrid extends FeatureGrid {
  layers: number;
}

/** A plane over `data` (a new zeroed one when absent), checked for size. */
export function plane(width: number, height: number, data: Float32Array = new Float32Array(width * height)): Plane {
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (data.length < width * height) throw new RangeError(`a ${width}×${height} plane needs ${width * height} values, got ${data.length}`);
  return { width, height, data };
}
