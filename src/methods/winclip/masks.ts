// Sliding-window masks over the patch grid (method.md §6), as anomalib's
// models/image/winclip/utils.py make_masks builds them with nn.functional.unfold on the grid of
// patch indices: windows in row-major order of their top-left patch, and inside a window the
// patches in row-major order too (unfold's kernel order).
//
// anomalib returns the masks as a [k², nWindows] tensor (one column per window); here they are
// stored window-major ([nWindows, k²] row-major) because every consumer walks them per window.

export interface WindowMasks {
  /** Window side in patches (anomalib's kernel_size). */
  kernel: number;
  stride: number;
  gridH: number;
  gridW: number;
  /** Number of windows. */
  count: number;
  /** Patches per window, kernel². */
  size: number;
  /** [count, size] patch indices (y·gridW + x), row-major. */
  indices: Int32Array;
}

/** make_masks(grid_size=(gridH, gridW), kernel_size, stride). */
export function makeMasks(gridH: number, gridW: number, kernel: number, stride = 1): WindowMasks {
  for (const [name, v] of [['gridH', gridH], ['gridW', gridW], ['kernel', kernel], ['stride', stride]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`makeMasks: ${name} must be a positive integer, got ${v}`);
  }
  // anomalib raises ValueError when a window does not fit the grid.
  if (gridH < kernel || gridW < kernel) {
    throw new RangeError(`makeMasks: each grid dimension must be >= the kernel size; got grid ${gridH}x${gridW} and kernel ${kernel}`);
  }
  // unfold's output size: floor((n - k) / s) + 1 along each axis.
  const outH = Math.floor((gridH - kernel) / stride) + 1;
  const outW = Math.floor((gridW - kernel) / stride) + 1;
  const count = outH * outW;
  const size = kernel * kernel;
  const indices = new Int32Array(count * size);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const base = (oy * outW + ox) * size;
      for (let ky = 0; ky < kernel; ky++) {
        for (let kx = 0; kx < kernel; kx++) indices[base + ky * kernel + kx] = (oy * stride + ky) * gridW + ox * stride + kx;
      }
    }
  }
  return { kernel, stride, gridH, gridW, count, size, indices };
}

/**
 * The token index table one window sequence is gathered with: [count, 1 + size], the class
 * token (index 0) first, then the window's patches shifted by one for the class token in front
 * of them. This is anomalib's torch_model.py _get_window_embeddings
 * `torch.cat((class_index, masks + 1)).T`. The `+ 1` is in current anomalib (open-edge-platform);
 * releases before it indexed the token sequence with the bare patch index, i.e. took the token
 * one before each patch (and the class token again for a window holding patch 0).
 */
export function windowTokenIndices(masks: WindowMasks): Int32Array {
  const row = 1 + masks.size;
  const out = new Int32Array(masks.count * row);
  for (let w = 0; w < masks.count; w++) {
    out[w * row] = 0;
    for (let i = 0; i < masks.size; i++) out[w * row + 1 + i] = masks.indices[w * masks.size + i] + 1;
  }
  return out;
}
