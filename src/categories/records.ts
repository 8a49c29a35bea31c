// Every detection is recorded (for review and feedback) with the context it was made in. With
// webhooks, an anomalous detection's event goes into the outbox in the same transaction: the
// record and its event exist together or not at all.
import { randomUUID } from 'node:crypto';
import type { DetectOptions, DetectResponse } from '../detection/types.ts';
import type { EventSource } from '../webhooks/sender.ts';
import type { CategoryContext } from './detect-context.ts';
import type { CategoryService } from './service.ts';
import { StoreUnavailableError } from '../store/errors.ts';

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
  const zeroShot = {
    ...result,
    categoryResource: null,
    thresholdSource: context.thresholdSource,
    calibrated: false,
    metadata: options.metadata ?? {},
  };
  // A zero-shot detection needs no store to be made, so a store that cannot be reached does
  // not fail it: the answer goes out without a detectionId, and the record (with its webhook
  // event, which lives in the store's outbox) is lost, logged and counted (recordSkipped).
  if (context.storeUnavailable) {
    service.recordSkipped(result, Boolean(webhook && result.isAnomalous), context.storeUnavailable);
    return zeroShot;
  }
  // The detection time and id, taken once: the record and its event say the same instant and
  // name the same record (a receiver can send feedback on it).
  const time = new Date();
  const id = randomUUID();
  const event = webhook && result.isAnomalous ? await webhook.source.event(result, webhook.requestId, image, time, id) : undefined;
  let stored: Awaited<ReturnType<typeof service.store.recordDetection>>;
  try {
    stored = await write(time, event);
  } catch (err) {
    // A stored category's detection fails with 503: its caller learns it was not recorded.
    if (!(err instanceof StoreUnavailableError) || context.record) throw err;
    service.recordSkipped(result, Boolean(webhook && result.isAnomalous), err);
    return zeroShot;
  }
  const { record, event: queued } = stored;
  if (webhook && queued) webhook.source.queued(queued, webhook.requestId);
  return {
    ...result,
    detectionId: record.id,
    categoryResource: context.record ? { id: context.record.id, references: context.record.referenceCount, calibrated: context.resourceCalibrated ?? context.calibrated } : null,
    thresholdSource: context.thresholdSource,
    calibrated: context.calibrated,
    metadata: options.metadata ?? {},
  };

  function write(time: Date, event: Awaited<ReturnType<EventSource['event']>> | undefined) {
    return service.store.recordDetection(
    {
      id,
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
  }
}
