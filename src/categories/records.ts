// Every detection is recorded (for review and feedback) with the context it was made in. With
// webhooks, an anomalous detection's event goes into the outbox in the same transaction: the
// record and its event exist together or not at all.
import type { DetectOptions, DetectResponse } from '../detection/types.ts';
import type { EventSource } from '../webhooks/sender.ts';
import type { CategoryContext } from './detect-context.ts';
import type { CategoryService } from './service.ts';

export interface RecordOptions {
  /** Keep the uploaded image with the record (KEEP_DETECTION_IMAGES). */
  keepImages: boolean;
}

/** Where an anomalous detection's webhook event comes from (absent: no webhooks). */
export interface RecordWebhook {
  source: EventSource;
  requestId: string;
}

/** Stores the detection and returns the response with its id, category and threshold context. */
export async function recordDetection(
  service: CategoryService,
  result: DetectResponse,
  context: CategoryContext,
  options: DetectOptions,
  image: Buffer,
  webhook?: RecordWebhook,
): Promise<DetectResponse> {
  // The detection time, taken once: the record and the event say the same instant.
  const time = new Date();
  const event = webhook && result.isAnomalous ? await webhook.source.event(result, webhook.requestId, image, time) : undefined;
  const { record, event: queued } = await service.store.recordDetection(
    {
      time,
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
    { ...(service.options.keepDetectionImages ? { image } : {}), ...(event ? { event } : {}) },
  );
  if (webhook && queued) webhook.source.queued(queued, webhook.requestId);
  return {
    ...result,
    detectionId: record.id,
    categoryResource: context.record ? { id: context.record.id, references: context.record.referenceCount, calibrated: context.calibrated } : null,
    thresholdSource: context.thresholdSource,
    calibrated: context.calibrated,
    metadata: options.metadata ?? {},
  };
}
