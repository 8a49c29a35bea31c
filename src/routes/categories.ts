// Categories the service remembers (issue: categories): CRUD, normal references and calibration.
// Validation at the edge (zod); the work is the category service's (src/categories).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BadRequestError, ReferenceNotFoundError } from '../errors.ts';
import { CategoryNotFoundError } from '../store/errors.ts';
import type { CategoryProvider } from '../categories/provider.ts';
import { referenceView } from '../categories/service.ts';
import { calibrateCategory } from '../categories/calibrate.ts';
import { CATEGORY_CHARS, LIMITS, normalizeCategory, single } from './detect-schema.ts';
import { jsonBody, readImageFiles, refuseQueryOptions } from './uploads.ts';

export interface CategoryRouteOptions {
  categories: CategoryProvider;
  maxBodyBytes: number;
  /** Method names and aliases a category's default method may be. */
  methods: readonly string[];
}

/** The smallest targetFalseAlarmRate a category takes. */
const MIN_FALSE_ALARM_RATE = 0.0001;

/** Same rules and normalisation (NFKC) as the `category` field of /v1/detect. */
export const categoryId = z
  .string()
  .transform(normalizeCategory)
  .pipe(
    z
      .string()
      .min(1, 'the category id is empty')
      .max(LIMITS.categoryLength, `the category id is longer than ${LIMITS.categoryLength} characters`)
      .regex(CATEGORY_CHARS, "a category id may hold letters, digits, spaces and - _ ' . , ( ) & + /"),
  );

const idParams = z.strictObject({ id: categoryId });
const refParams = z.strictObject({ id: categoryId, refId: z.string().uuid('not a reference id') });

function categoryBody(methods: readonly string[]) {
  return z.strictObject({
    // The prompt text: normalised as a detection's category field is (NFKC, spaces), so both give the same prompts.
    name: z.string().transform(normalizeCategory).pipe(z.string().min(1).max(LIMITS.categoryLength).regex(CATEGORY_CHARS, "name may hold letters, digits, spaces and - _ ' . , ( ) & + /")).optional(),
    // Below 1 in 10,000 a calibration would need more than 23,000 normal images (at 90% confidence).
    targetFalseAlarmRate: z.number().min(MIN_FALSE_ALARM_RATE, `targetFalseAlarmRate must be at least ${MIN_FALSE_ALARM_RATE} (1 in 10,000)`).max(0.5).optional(),
    defaultMethod: z.enum(methods as [string, ...string[]]).optional(),
    notes: z.string().max(2000).optional(),
  });
}

const CONFIDENCE_RANGE = 'confidence must be a number from 0.5 to 0.9999, e.g. 0.9';
const calibrateFields = z.strictObject({
  // A number (JSON) or a plain decimal (a form field): not true, null or "", which a coercion would take.
  confidence: single(
    'confidence',
    z.union([z.number(), z.string().regex(/^\d*\.?\d+$/).transform(Number)], { error: CONFIDENCE_RANGE }).pipe(z.number().min(0.5, CONFIDENCE_RANGE).max(0.9999, CONFIDENCE_RANGE)),
  ).optional(),
  source: single('source', z.literal('references', { error: 'source must be "references" (leave-one-out over the stored references), or leave it out and send images' })).optional(),
});

const REFERENCE_FILES_PER_REQUEST = 64;
/** What a DELETE answers (documented: it is not the 200 Fastify would assume). */
const deleted = { 204: { description: 'Deleted: no body', type: 'null' } } as const;
const CALIBRATION_FILES_PER_REQUEST = 1000;

export async function categoryRoutes(app: FastifyInstance, opts: CategoryRouteOptions): Promise<void> {
  const body = categoryBody(opts.methods);
  const tags = ['categories'];

  app.get('/v1/categories', { schema: { summary: 'The stored categories', tags } }, async () => {
    const service = opts.categories.get();
    const stale = await service.staleCategories();
    const records = await service.store.listCategories();
    return { categories: await Promise.all(records.map((r) => service.view(r, stale))) };
  });

  app.get('/v1/categories/:id', { schema: { summary: 'One stored category', tags } }, async (request) => {
    const { id } = idParams.parse(request.params);
    const service = opts.categories.get();
    return service.view(await service.require(id));
  });

  app.put('/v1/categories/:id', { schema: { summary: 'Create or update a category', tags } }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const input = body.parse(jsonBody(request));
    const service = opts.categories.get();
    const existing = await service.store.getCategory(id);
    const method = input.defaultMethod ?? existing?.defaultMethod;
    // A category's default method scores its single detections and its calibration too.
    if (input.defaultMethod && service.detector.registry.get(input.defaultMethod).batchOnly) {
      throw new BadRequestError(`defaultMethod ${input.defaultMethod} scores batches only (POST /v1/detect/batch with method=${input.defaultMethod}); a category's default method also scores POST /v1/detect and its calibration`);
    }
    const name = input.name ?? existing?.name ?? id;
    const defaultMethod = method ? service.detector.registry.get(method).name : service.detector.methods()[0];
    // The name is the prompt text: one too long for the templates is refused here, not at every detection.
    service.detector.checkPromptLengths({ category: name, prompts: { mode: 'templated' }, method: defaultMethod, map: 'none', threshold: 1, branches: false });
    const { category, created } = await service.store.putCategory({
      id,
      name,
      defaultMethod,
      targetFalseAlarmRate: input.targetFalseAlarmRate ?? existing?.targetFalseAlarmRate ?? 0.01,
      notes: input.notes ?? existing?.notes ?? '',
    });
    return reply.code(created ? 201 : 200).send(await service.view(category));
  });

  app.delete('/v1/categories/:id', { schema: { summary: 'Delete a category, its references and calibration', tags, response: deleted } }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    if (!(await opts.categories.get().store.deleteCategory(id))) throw new CategoryNotFoundError(id);
    return reply.code(204).send();
  });

  app.post('/v1/categories/:id/references', { schema: { summary: 'Add normal reference images (repeated file field "image")', tags } }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const service = opts.categories.get();
    await service.require(id);
    const { files, fields } = await readImageFiles(request, { maxBytes: opts.maxBodyBytes, maxFiles: REFERENCE_FILES_PER_REQUEST });
    if (Object.keys(fields).length) throw new BadRequestError(`unexpected fields ${Object.keys(fields).join(', ')}; send only file fields "image"`);
    const { added, duplicates } = await service.addReferences(id, files);
    const count = (await service.require(id)).referenceCount;
    // 200 when nothing was new (every image already a reference): a repeated upload is harmless.
    return reply.code(added.length > 0 ? 201 : 200).send({ added: added.map(referenceView), duplicates, references: { count, limit: service.options.referenceLimit } });
  });

  app.get('/v1/categories/:id/references', { schema: { summary: "A category's normal references", tags } }, async (request) => {
    const { id } = idParams.parse(request.params);
    const service = opts.categories.get();
    await service.require(id);
    return { references: (await service.store.listReferences(id)).map(referenceView) };
  });

  app.delete('/v1/categories/:id/references/:refId', { schema: { summary: 'Remove a normal reference', tags, response: deleted } }, async (request, reply) => {
    const { id, refId } = refParams.parse(request.params);
    const service = opts.categories.get();
    await service.require(id);
    if (!(await service.store.deleteReference(id, refId))) throw new ReferenceNotFoundError(`category ${JSON.stringify(id)} has no reference ${refId}`);
    return reply.code(204).send();
  });

  app.post(
    '/v1/categories/:id/calibrate',
    { schema: { summary: 'Set the threshold from normal images (held-out, or leave-one-out over the references)', tags } },
    async (request) => {
      const { id } = idParams.parse(request.params);
      const service = opts.categories.get();
      const record = await service.require(id);
      let images;
      let fields: Record<string, unknown> = {};
      // Options go in the body (form fields or JSON): a query string beside them was ignored.
      refuseQueryOptions(request);
      if (request.isMultipart()) {
        const read = await readImageFiles(request, { maxBytes: opts.maxBodyBytes, maxFiles: CALIBRATION_FILES_PER_REQUEST });
        images = read.files;
        fields = read.fields;
      } else {
        fields = jsonBody(request);
        // An empty body recalibrated leave-one-out, replacing a held-out calibration unasked.
        if (!('source' in fields)) throw new BadRequestError('send held-out normal images (multipart, repeated file fields "image"), or {"source": "references"} for leave-one-out over the stored references');
      }
      const { confidence, source } = calibrateFields.parse(fields);
      if (images && source === 'references') throw new BadRequestError('send either held-out images or source=references (leave-one-out over the stored references), not both');
      const calibration = await calibrateCategory(service, record, {
        images,
        confidence: confidence ?? service.options.calibrationConfidence,
      });
      return calibration;
    },
  );

  app.post('/v1/reembed', { schema: { summary: 'Compute missing reference features for the loaded model from the stored images', tags } }, async () => {
    return opts.categories.get().reembed();
  });
}
