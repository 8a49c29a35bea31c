// MuSc (Li et al., ICLR 2024; github xrli-U/MuSc): zero-shot anomaly maps and scores for a
// batch of unlabelled images of one category, which score each other. Pure, synchronous
// functions on the image graph's outputs (features.ts says which). The kernels (pair-engine.ts,
// kernels.ts, wasm-asm.ts) are internal.
export {
  defaultMuscLayers,
  layerTokens,
  MUSC_LAYERS_12,
  MUSC_LAYERS_24,
  validateMuscFeatures,
  type MuscFeatures,
  type PatchGrid,
} from './features.ts';
export {
  assertEnoughImages,
  MUSC_MIN_IMAGES,
  MUSC_TOP_MIN_RATIO,
  MuscInputError,
  MuscTooFewImagesError,
  topMinCount,
} from './min-images.ts';
export { checkDegree, layerNormImage, lnamd, LNAMD_EPS, MUSC_R_LIST, neighbourhoodSum } from './lnamd.ts';
export {
  balancedOwnerRanges,
  defaultBandRows,
  minDistanceIndex,
  minDistanceLength,
  MutualScorer,
  ownedPartners,
  prepareMsmLayer,
  topMinMeans,
  type MsmLayer,
} from './msm.ts';
export { meanOverLayersAndDegrees, upsampleAlignCorners, upsampledMax } from './aggregate.ts';
export { minMaxNormalise, rscin, RSCIN_K_DEFAULT, RSCIN_K_VISA } from './rscin.ts';
export { MuscBatch, muscDistanceLength, scoreMusc, type MuscOptions, type MuscResult } from './musc.ts';
