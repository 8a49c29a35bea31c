// Every detection is recorded (for review and feedback) with the context it was made in.
import type { DetectOptions, DetectResponse } from '../detection/types.ts';
import type { CategoryContext } from './detect-context.ts';
import type { CategoryService } from './service.ts';

export interface RecordOptions {
  /** Keep the uploaded image with the record (KEEP_DETECTION_IMAGES). */
  keepImages: boolean;
}

/** Stores the detection and returns the response with its id, category and threshold context. */
export async function recordDetection(service: CategoryService, result: DetectResponse, context: CategoryContext, options: DetectOptions, image: Buffer): Promise<DetectResponse> {
  const { record } = await service.store.recordDetection(
    {
      categoryId: context.record?.id ?? null,
      category: result.category,
      method: result.method ?? '',
      score: result.score,
      isAnomalous: result.isAnomalous,
      threshold: result.threshold,
      thresholdSource: context.thresholdSource,
      summary: result.summary,
      metadata: options.metadata ?? {},
    },
    service.options.keepDetectionImages ? { image } : {},
  );
  return {
    ...result,
    detectionId: record.id,
    categoryResource: context.record ? { id: context.record.id, references: context.record.referenceCount, calibrated: context.calibrated } : null,
    thresholdSource: context.thresholdSource,
    calibrated: context.calibrated,
    metadata: options.metadata ?? {},
  };
}
