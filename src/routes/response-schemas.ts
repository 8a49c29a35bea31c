// The API's answers as zod schemas: the OpenAPI document is generated from them, and the type
// checks below tie them to the TypeScript types the detector returns, so the documentation
// cannot drift from what is sent. Tests also parse real responses with them.
import { z } from 'zod';
import type { DetectResponse, ModelInfo } from '../detection/types.ts';

const method = z.string().meta({ description: 'scoring method: dense-frequency, winclip, … (GET /v1/models lists them)' });

export const regionSchema = z.strictObject({
  bbox: z.strictObject({ x: z.number().int(), y: z.number().int(), w: z.number().int(), h: z.number().int() }).meta({ description: 'box in image pixels' }),
  areaFraction: z.number().meta({ description: 'share of the image the region covers' }),
  peak: z.number(),
  meanScore: z.number(),
});

const gridMap = z.strictObject({
  type: z.literal('grid'),
  width: z.number().int(),
  height: z.number().int(),
  values: z.array(z.number()).meta({ description: 'row-major floats in 0-1' }),
});
const imageMap = z.strictObject({
  type: z.enum(['png', 'overlay']),
  width: z.number().int(),
  height: z.number().int(),
  encoding: z.literal('base64'),
  mime: z.literal('image/png'),
  data: z.string(),
});
const urlMap = z.strictObject({
  type: z.enum(['png', 'overlay']),
  width: z.number().int(),
  height: z.number().int(),
  url: z.string().meta({ description: 'GET it (same API key) for the PNG: /v1/maps/<token>' }),
  expiresAt: z.string().meta({ description: 'ISO time after which the URL answers 404 map_expired' }),
});
// Not a discriminated union: the inline and the URL form share their `type` values.
export const mapSchema = z.union([gridMap, imageMap, urlMap]).nullable();

const branchSchema = z.strictObject({ score: z.number(), map: mapSchema.optional() });

export const detectResponseSchema = z.strictObject({
  category: z.string(),
  method: method.optional(),
  score: z.number().min(0).max(1).meta({ description: 'fused image anomaly score' }),
  isAnomalous: z.boolean().meta({ description: 'score ≥ threshold' }),
  threshold: z.number(),
  regions: z.array(regionSchema).meta({ description: 'connected regions of the map above the threshold, by peak, at most 10' }),
  summary: z.string().meta({ description: 'one sentence a ticketing bot can post as it is' }),
  image: z.strictObject({ width: z.number().int(), height: z.number().int() }),
  map: mapSchema,
  branches: z.record(z.string(), branchSchema).optional().meta({ description: 'per part (dense-frequency: full, high, low): score and map' }),
  model: z.strictObject({
    id: z.string(),
    generatedRandomModel: z.boolean(),
    precision: z.enum(['fp32', 'int8']).optional().meta({ description: 'what the towers ran in (QUANTIZE)' }),
    warning: z.string().optional(),
  }),
  timingsMs: z.strictObject({ decode: z.number(), encode: z.number(), score: z.number(), render: z.number(), total: z.number() }),
  detectionId: z.string().optional().meta({ description: 'the stored record: POST /v1/detections/{id}/feedback' }),
  categoryResource: z
    .strictObject({ id: z.string(), references: z.number().int(), calibrated: z.boolean() })
    .nullable()
    .optional()
    .meta({ description: 'the stored category used: its references, and whether it has a calibration this method and these prompts can use (calibrated, whatever the request threshold); null: zero-shot' }),
  thresholdSource: z.enum(['request', 'category calibration', 'default']).optional(),
  calibrated: z.boolean().optional().meta({ description: 'false: the threshold is not calibrated for this category' }),
  regionThreshold: z.number().meta({ description: "regions and the map's contour are the map above this: the category's calibrated pixel threshold, else threshold" }),
  calibrationNotUsed: z.string().optional().meta({ description: "the stored category has a calibration this detection did not use, and why (out of date, another method, other prompts)" }),
  metadata: z.record(z.string(), z.string()).optional(),
});

// POST /v1/detect/batch: one entry per uploaded file, in upload order (detect-batch.ts BatchEntry).
const batchIndex = z.number().int().min(0).meta({ description: "the file's position in the upload (0-based)" });
const batchFilename = z.string().nullable().meta({ description: "the file part's filename, null when it had none" });
export const batchEntrySchema = z.union([
  z.strictObject({ index: batchIndex, filename: batchFilename, ok: z.literal(true), result: detectResponseSchema.meta({ description: 'what /v1/detect answers for this image' }) }),
  z.strictObject({
    index: batchIndex,
    filename: batchFilename,
    ok: z.literal(false),
    status: z.number().int().meta({ description: 'the HTTP status /v1/detect would have answered for this image alone (400, 413, 415, 422)' }),
    error: z.string().meta({ description: 'machine-readable code, e.g. undecodable_image' }),
    message: z.string(),
  }),
]);

export const batchResponseSchema = z.strictObject({
  category: z.string(),
  method: method.meta({ description: 'the method that scored the batch (canonical name; musc: the images scored each other)' }),
  count: z.number().int().meta({ description: 'files uploaded (= results.length)' }),
  results: z.array(batchEntrySchema).meta({ description: 'one entry per file, in upload order; a bad file gets its own error entry' }),
});

// Learned prompt files from PROMPTS_DIR (src/methods/dense-frequency/learned-prompts.ts).
const nullableNumber = z.number().nullable();
const learnedPromptsSchema = z
  .strictObject({
    folder: z.string().optional(),
    available: z.array(
      z.strictObject({
        name: z.string().meta({ description: 'use it as prompts=learned:<name>' }),
        default: z.boolean().meta({ description: 'what prompts=learned without a name uses' }),
        checkpoint: z.string(),
        createdAt: z.string().nullable(),
        categories: z.array(z.string()).meta({ description: 'categories it was trained on' }),
        images: nullableNumber,
        epochs: nullableNumber,
        bestEpoch: nullableNumber,
        losses: z.strictObject({ train: nullableNumber, validation: nullableNumber }),
      }),
    ),
    refused: z.array(z.strictObject({ name: z.string(), file: z.string(), reason: z.string() })).meta({ description: 'files left out at start-up and why' }),
  })
  .meta({ description: 'learned prompt files (npm run train) this server offers' });

export const modelInfoSchema = z.strictObject({
  id: z.string(),
  source: z.enum(['local', 'hub']),
  generatedRandomModel: z.boolean(),
  inputSize: z.number().int(),
  grid: z.number().int(),
  denseLayers: z.array(z.number().int()),
  denseStart: z.number().int(),
  denseAttention: z.string(),
  precision: z.enum(['fp32', 'int8']).optional().meta({ description: 'what the towers run in (QUANTIZE)' }),
  projectionDim: z.number().int(),
  promptModes: z.array(z.string()),
  methods: z.array(method).optional(),
  learnedPrompts: learnedPromptsSchema.optional(),
});

export const modelsResponseSchema = z.strictObject({
  models: z.array(modelInfoSchema),
  capabilities: z.array(z.string()).meta({ description: 'what this server offers beyond detect: categories, feedback, batch, …' }),
});

export const errorSchema = z.strictObject({
  error: z.string().meta({ description: 'machine-readable code, e.g. bad_request, image_too_large, overloaded' }),
  message: z.string().meta({ description: 'what went wrong, naming the field or limit' }),
  fields: z.array(z.string()).optional().meta({ description: 'with a 400 from validation: the request fields it is about, e.g. ["threshold"]' }),
});

export const healthSchema = z.strictObject({ status: z.string(), message: z.string().optional() });

// Both directions: the schema accepts every value of the type and describes nothing the type lacks.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const documented: [Same<z.infer<typeof detectResponseSchema>, DetectResponse>, Same<z.infer<typeof modelInfoSchema>, ModelInfo>] = [true, true];
void documented;

/** JSON Schema (draft 2020-12, as OpenAPI 3.1 uses) for route documentation. */
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    // zod spells .int() as ±2^53 bounds: true, but noise to a reader of the API docs.
    override: ({ jsonSchema: s }) => {
      if (s.type === 'integer' && s.minimum === Number.MIN_SAFE_INTEGER) delete s.minimum;
      if (s.type === 'integer' && s.maximum === Number.MAX_SAFE_INTEGER) delete s.maximum;
    },
  }) as Record<string, unknown>;
  return rest;
}
