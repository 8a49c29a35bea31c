// Detection records: review (list, one, its image) and feedback, which can add a false alarm
// to the category's references or recalibrate the category with it.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BadRequestError, ConflictError, DetectionNotFoundError } from '../errors.ts';
import type { CategoryProvider } from '../categories/provider.ts';
import { detectionView } from '../categories/service.ts';
import { addToCalibration } from '../categories/calibrate.ts';
import { sniffImageType } from '../imaging/decode.ts';
import type { ServiceMetrics } from '../observability/metrics.ts';
import { categoryId } from './categories.ts';
import { single } from './detect-schema.ts';
import { jsonBody } from './uploads.ts';

const idParams = z.strictObject({ id: z.string().uuid('not a detection id') });
const listQuery = z.strictObject({
  category: single('category', categoryId).optional(),
  verdict: single('verdict', z.enum(['anomalous', 'normal'], { error: 'verdict must be "anomalous" or "normal"' })).optional(),
  // Whole decimal numbers only: not "", "0x10" or "1e2", which a number coercion would take.
  limit: single('limit', z.string().regex(/^\d{1,4}$/, 'limit must be a whole number from 1 to 500').transform(Number).pipe(z.number().min(1, 'limit must be at least 1').max(500, 'limit must be at most 500'))).optional(),
});
const feedbackBody = z.strictObject({
  label: z.enum(['normal', 'anomalous'], { error: 'label must be "normal" or "anomalous"' }),
  note: z.string().max(2000).optional(),
  addTo: z.enum(['references', 'calibration']).optional(),
});

export async function detectionRoutes(app: FastifyInstance, opts: { categories: CategoryProvider; metrics?: ServiceMetrics }): Promise<void> {
  const tags = ['detections'];

  app.get('/v1/detections', { schema: { summary: 'Recent detections, newest first', tags } }, async (request) => {
    const q = listQuery.parse(request.query);
    const service = opts.categories.get();
    // A stored category's id lists its detections; any other text, the zero-shot ones under that name.
    const stored = q.category !== undefined ? await service.store.getCategory(q.category) : null;
    const records = await service.store.listDetections({
      // Any other text: the zero-shot ones under that name, not a stored category's whose prompt name it is.
      ...(stored ? { categoryId: stored.id } : q.category !== undefined ? { category: q.category, categoryId: null } : {}),
      verdict: q.verdict,
      limit: q.limit ?? 50,
    });
    return { detections: records.map(detectionView) };
  });

  app.get('/v1/detections/:id', { schema: { summary: 'One detection record', tags } }, async (request) => {
    const { id } = idParams.parse(request.params);
    const record = await opts.categories.get().store.getDetection(id);
    if (!record) throw new DetectionNotFoundError(`no detection ${id} (records are kept for DETECTION_RETENTION_DAYS / _COUNT)`);
    return detectionView(record);
  });

  app.get('/v1/detections/:id/image', { schema: { summary: "A detection's image (KEEP_DETECTION_IMAGES=1)", tags } }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const store = opts.categories.get().store;
    if (!(await store.getDetection(id))) throw new DetectionNotFoundError(`no detection ${id}`);
    const image = await store.getDetectionImage(id);
    if (!image) throw new DetectionNotFoundError(`detection ${id} was recorded without its image (KEEP_DETECTION_IMAGES=0)`);
    return reply.type(`image/${sniffImageType(image) ?? 'octet-stream'}`).send(image);
  });

  app.post('/v1/detections/:id/feedback', { schema: { summary: 'Mark a detection normal or anomalous; a false alarm can join the references or the calibration', tags } }, async (request) => {
    const { id } = idParams.parse(request.params);
    const body = feedbackBody.parse(jsonBody(request));
    const service = opts.categories.get();
    const record = await service.store.getDetection(id);
    if (!record) throw new DetectionNotFoundError(`no detection ${id}`);
    // What addTo did, in the answer: a bot learns the new threshold, or that the calibration it
    // relied on is now out of date (a new reference changes the scores it was made for).
    let addedTo: Record<string, unknown> | undefined;
    if (body.addTo) {
      if (body.label !== 'normal') throw new BadRequestError('addTo needs label "normal": only normal images join the references or the calibration');
      // A deleted category unlinks its records (categoryId null) but keeps their category text.
      if (!record.categoryId) {
        throw new ConflictError(
          `this detection has no stored category (it was scored zero-shot, or its category ${JSON.stringify(record.category)} was deleted since): create the category (PUT /v1/categories/{id}) and add references to it`,
        );
      }
      if (body.addTo === 'references') {
        const image = await service.store.getDetectionImage(id);
        if (!image) throw new ConflictError('the detection was recorded without its image (start the server with KEEP_DETECTION_IMAGES=1 to keep them)');
        const { added, duplicates } = await service.addReferences(record.categoryId, [{ bytes: image, filename: `detection ${id}` }]);
        const category = await service.require(record.categoryId);
        // Only the calibration's state: the whole view would also look for references to re-embed.
        const calibration = await service.calibrationView(category);
        addedTo = {
          references: {
            referenceId: added[0]?.id ?? duplicates[0]?.referenceId ?? null,
            alreadyHeld: added.length === 0,
            count: category.referenceCount,
            ...(calibration && !calibration.current ? { calibrationOutdated: calibration.outdated } : {}),
          },
        };
      } else {
        const { calibration, added } = await addToCalibration(service, record.categoryId, record);
        addedTo = { calibration: { alreadyIncluded: !added, m: calibration.m, threshold: calibration.threshold, guarantee: calibration.guarantee } };
      }
    }
    const updated = await service.store.setFeedback(id, { label: body.label, note: body.note ?? null });
    opts.metrics?.feedback.inc({ category: record.categoryId ?? 'zero-shot', label: body.label });
    return { ...detectionView(updated!), ...(addedTo ? { addedTo } : {}) };
  });
}
