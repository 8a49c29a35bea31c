// Which int8 weight format suits this CPU's ONNX Runtime kernels. With VNNI (avx512_vnni or
// avx_vnni) the u8×s8 kernel accumulates each group of four products straight into int32
// (vpdpbusd), so full-range int8 weights give exact sums at the u8×s8 speed: 's8'. Without it
// the AVX2 u8×s8 kernel adds pairs of products in int16 first and saturates on full-range
// weights, so the exact choice there is 'u8' (u8×u8, slower) — or 's7' when asked for. Measured
// exact on an AMD EPYC with avx512_vnni (255 × ±127, K up to 768; test/clip/onnx/int8.test.ts
// repeats the check on VNNI CPUs).
import { readFileSync } from 'node:fs';
import type { WeightFormat } from './quantize.ts';

/** The QUANTIZE_WEIGHTS setting: a format, or 'auto' (this machine's best exact one). */
export type WeightSetting = WeightFormat | 'auto';

/** Whether the CPU flags (as /proc/cpuinfo lists them) include a VNNI extension. */
export function hasVnni(cpuinfo: string): boolean {
  return /^flags\s*:.*\b(avx512_vnni|avx_vnni)\b/m.test(cpuinfo);
}

/** /proc/cpuinfo on Linux; '' elsewhere or when it cannot be read. */
function readCpuinfo(): string {
  if (process.platform !== 'linux') return '';
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

/** 's8' where the CPU has VNNI, otherwise 'u8'. */
export function machineWeightFormat(cpuinfo: string = readCpuinfo()): WeightFormat {
  return hasVnni(cpuinfo) ? 's8' : 'u8';
}

export function resolveWeightFormat(setting: WeightSetting | undefined, cpuinfo?: string): WeightFormat {
  return setting === undefined || setting === 'auto' ? machineWeightFormat(cpuinfo) : setting;
}
