// Shared shapes of the CLIP runtime: the architecture read from a checkpoint's config and
// the weights in one canonical layout, whatever layout (Hugging Face or open_clip) they came in.

export type Activation = 'quick_gelu' | 'gelu';

/** A dense float32 tensor in row-major order. */
export interface Tensor32 {
  shape: number[];
  data: Float32Array;
}

export interface VisionConfig {
  width: number; // hidden size
  layers: number;
  heads: number;
  mlpWidth: number; // intermediate size
  patchSize: number;
  imageSize: number; // the checkpoint's own input size
  layerNormEps: number;
  act: Activation;
}

export interface TextConfig {
  width: number;
  layers: number;
  heads: number;
  mlpWidth: number;
  contextLength: number; // 77 for CLIP
  vocabSize: number;
  layerNormEps: number;
  act: Activation;
  /** Pool at the highest token id (OpenAI vocabularies: the EOT token is the highest id). */
  eosTokenId: number;
  bosTokenId: number;
}

export interface ClipConfig {
  vision: VisionConfig;
  text: TextConfig;
  projectionDim: number;
  /** exp(logit_scale); 100 for OpenAI CLIP. */
  logitScale: number;
}

/** torch.nn.Linear layout: weight [out, in], bias [out]. */
export interface Linear {
  weight: Tensor32;
  bias?: Tensor32;
}

export interface LayerNorm {
  weight: Tensor32;
  bias: Tensor32;
}

export interface Block {
  ln1: LayerNorm;
  q: Linear;
  k: Linear;
  v: Linear;
  out: Linear;
  ln2: LayerNorm;
  fc1: Linear;
  fc2: Linear;
}

export interface VisionWeights {
  patchEmbed: Tensor32; // [width, 3, patch, patch], no bias
  classEmbed: Tensor32; // [width]
  posEmbed: Tensor32; // [1 + grid*grid, width]
  lnPre: LayerNorm;
  blocks: Block[];
  lnPost: LayerNorm;
  proj: Tensor32; // [projectionDim, width] (Linear layout, no bias)
}

export interface TextWeights {
  tokenEmbed: Tensor32; // [vocab, width]
  posEmbed: Tensor32; // [contextLength, width]
  blocks: Block[];
  lnFinal: LayerNorm;
  proj: Tensor32; // [projectionDim, width] (Linear layout, no bias)
}

export interface ClipWeights {
  config: ClipConfig;
  vision: VisionWeights;
  text: TextWeights;
}

export type DenseAttention = 'vv' | 'qqkk';

/** Options that shape the image graph (and so its cache key). */
export interface ImageGraphOptions {
  imageSize: number;
  /** 1-based block indices whose output gives dense patch features, e.g. [6, 9, 12]. */
  denseLayers: number[];
  /** 1-based first block of the dense path (method.md §2). */
  denseStart: number;
  denseAttention: DenseAttention;
  /** How the position embedding is resized for a non-native size (position-embedding.ts); default 'hf'. */
  positionResize?: 'hf' | 'open_clip';
  /** 'int8': int8 linear layers with dynamic activations (onnx/quantize.ts); absent: fp32. */
  precision?: 'int8';
  /** int8 weight storage when not the default 'u8' (onnx/quantize.ts WeightFormat). */
  int8Weights?: 's7' | 's8';
}
