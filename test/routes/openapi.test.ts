// The OpenAPI document and the docs UI, and the check that the documented schemas are what the
// service really sends: real responses are parsed with the same zod schemas.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { ApiKeys } from '../../src/auth/api-keys.ts';
import { batchResponseSchema, detectResponseSchema, errorSchema, jsonSchema, modelsResponseSchema } from '../../src/routes/response-schemas.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { partPng } from '../support/test-images.ts';

let svc: TinyService;
let png: Buffer;
let doc: any;

beforeAll(async () => {
  svc = await startTinyService();
  png = await partPng();
  doc = (await svc.app.inject({ url: '/openapi.json' })).json();
});
afterAll(() => svc?.close());

const detect = (fields: Record<string, string>) => {
  const form = multipart([{ name: 'image', value: png, filename: 'part.png', type: 'image/png' }, ...Object.entries(fields).map(([name, value]) => ({ name, value }))]);
  return svc.app.inject({ method: 'POST', url: '/v1/detect', ...form });
};

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document of every public route', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'clip-anomaly-service', version: expect.any(String) });
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/metrics',
      '/readyz',
      '/v1/categories',
      '/v1/categories/{id}',
      '/v1/categories/{id}/calibrate',
      '/v1/categories/{id}/references',
      '/v1/categories/{id}/references/{refId}',
      '/v1/detect',
      '/v1/detect/batch',
      '/v1/detections',
      '/v1/detections/{id}',
      '/v1/detections/{id}/feedback',
      '/v1/detections/{id}/image',
      '/v1/maps/{token}',
      '/v1/models',
      '/v1/reembed',
    ]);
    // The DELETEs answer 204 with no body, and say so.
    expect(Object.keys(doc.paths['/v1/categories/{id}'].delete.responses)).toEqual(['204']);
    expect(Object.keys(doc.paths['/v1/categories/{id}/references/{refId}'].delete.responses)).toEqual(['204']);
  });

  it('describes both request forms of POST /v1/detect from the zod option schema', () => {
    const op = doc.paths['/v1/detect'].post;
    const content = op.requestBody.content;
    expect(Object.keys(content)).toEqual(['multipart/form-data', 'image/*', 'application/octet-stream']);
    const form = content['multipart/form-data'].schema;
    expect(form.required).toEqual(['image', 'category']);
    expect(form.properties.image).toMatchObject({ type: 'string', format: 'binary' });
    expect(form.properties.category).toMatchObject({ type: 'string', maxLength: 100, pattern: expect.any(String) });
    expect(form.properties.map.enum).toEqual(['none', 'grid', 'png', 'overlay']);
    expect(form.properties.normal).toMatchObject({ type: 'array', maxItems: 32, items: { maxLength: 200 } });
    // No fixed default: a stored category's calibrated threshold, else THRESHOLD (the description says so).
    // A plain decimal from 0 to 1 (no "", "0x1" or "1e0"), documented as its pattern.
    expect(form.properties.threshold).toMatchObject({ type: 'string', pattern: expect.any(String), description: expect.stringMatching(/THRESHOLD/) });
    const pattern = new RegExp(form.properties.threshold.pattern);
    expect(['0', '0.5', '1', '1.0', '.25'].every((v) => pattern.test(v))).toBe(true);
    expect(['', '0x1', '1e0', '2', '-0.1'].some((v) => pattern.test(v))).toBe(false);
    const query = Object.fromEntries(op.parameters.filter((p: any) => p.in === 'query').map((p: any) => [p.name, p]));
    expect(query.category.schema.maxLength).toBe(100);
    expect(query.map.schema.default).toBe('png');
  });

  it('documents the response and every error status with the zod schemas', () => {
    const responses = doc.paths['/v1/detect'].post.responses;
    expect(Object.keys(responses).sort()).toEqual(['200', '400', '401', '413', '415', '422', '429', '500', '503', '504']);
    const ok = responses['200'].content['application/json'].schema;
    const generated = jsonSchema(detectResponseSchema) as { properties: object; required: string[] };
    expect(Object.keys(ok.properties)).toEqual(Object.keys(detectResponseSchema.shape));
    expect(ok.required).toEqual(generated.required);
    expect(ok.additionalProperties).toBe(false);
    expect(ok.properties.score).toMatchObject({ type: 'number', minimum: 0, maximum: 1, description: expect.any(String) });
    expect(ok.required).toEqual(expect.arrayContaining(['score', 'isAnomalous', 'regions', 'summary', 'map', 'timingsMs']));
    expect(responses['413'].content['application/json'].schema.properties).toHaveProperty('error');
    // format=png: the same 200 as a PNG, the verdict in headers.
    expect(responses['200'].content['image/png'].schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(Object.keys(responses['200'].headers)).toEqual(expect.arrayContaining(['x-anomaly-score', 'x-anomaly-verdict', 'x-anomaly-threshold', 'x-region-threshold']));
    // A Header Object: {description, schema: {type}}, not the schema wrapped twice.
    expect(responses['200'].headers['x-anomaly-verdict'].schema).toMatchObject({ type: 'string', enum: ['anomalous', 'normal'] });
    expect(doc.paths['/v1/maps/{token}'].get.responses['200'].content).toHaveProperty('image/png');
    expect(doc.paths['/metrics'].get.responses['200'].content).toHaveProperty('text/plain');
  });

  it('matches what the service sends: real answers parse with the documented schemas', async () => {
    const variants: Record<string, string>[] = [{ category: 'pcb' }, { category: 'pcb', map: 'grid', branches: 'true' }, { category: 'pcb', map: 'overlay' }, { category: 'pcb', map: 'none' }, { category: 'pcb', format: 'url' }];
    for (const fields of variants) {
      const res = await detect(fields);
      expect(res.statusCode).toBe(200);
      expect(() => detectResponseSchema.parse(res.json())).not.toThrow();
    }
    const models = (await svc.app.inject({ url: '/v1/models' })).json();
    expect(() => modelsResponseSchema.parse(models)).not.toThrow();
    const bad = await detect({ category: 'pcb', map: 'jpeg' });
    expect(bad.statusCode).toBe(400);
    expect(() => errorSchema.parse(bad.json())).not.toThrow();
    // And the schema is strict enough to notice drift.
    const real = (await detect({ category: 'pcb', map: 'none' })).json();
    expect(() => detectResponseSchema.parse({ ...real, extra: 1 })).toThrow();
  });

  it('documents POST /v1/detect/batch like /v1/detect: the same option fields, repeated images, one entry per file', () => {
    const op = doc.paths['/v1/detect/batch'].post;
    expect(op.tags).toEqual(['detection']);
    expect(Object.keys(op.requestBody.content)).toEqual(['multipart/form-data']);
    const form = op.requestBody.content['multipart/form-data'].schema;
    expect(form.required).toEqual(['image', 'category']);
    expect(form.properties.image).toMatchObject({ type: 'array', minItems: 1, maxItems: svc.settings.batchMax, items: { type: 'string', format: 'binary' } });
    expect(form.properties).not.toHaveProperty('reference');
    // Every option field of /v1/detect, typed alike (only the descriptions of format and method say what differs).
    const single = doc.paths['/v1/detect'].post.requestBody.content['multipart/form-data'].schema.properties;
    const options = Object.keys(single).filter((k) => k !== 'image' && k !== 'reference');
    expect(Object.keys(form.properties).filter((k) => k !== 'image')).toEqual(options);
    for (const k of options) {
      const { description: _a, ...batchType } = form.properties[k];
      const { description: _b, ...singleType } = single[k];
      expect(batchType, k).toEqual(singleType);
    }
    expect(form.properties.method.description).toMatch(/musc/);

    const responses = op.responses;
    expect(Object.keys(responses).sort()).toEqual(['200', '400', '401', '413', '415', '422', '429', '500', '503', '504']);
    const ok = responses['200'].content['application/json'].schema;
    expect(ok.required).toEqual(['category', 'method', 'count', 'results']);
    const entries = ok.properties.results.items.anyOf;
    expect(entries).toHaveLength(2);
    expect(entries[0].properties.ok).toMatchObject({ type: 'boolean', enum: [true] });
    expect(entries[1].properties.ok).toMatchObject({ type: 'boolean', enum: [false] });
    expect(Object.keys(entries[0].properties.result.properties)).toEqual(Object.keys(detectResponseSchema.shape));
    expect(entries[1].required).toEqual(['index', 'filename', 'ok', 'status', 'error', 'message']);
    expect(responses['422'].description).toMatch(/musc/);
  });

  it('matches what the batch route sends: mixed good and bad files, every method, parse with the documented schema', async () => {
    const files = [
      { name: 'image', value: png, filename: 'a.png', type: 'image/png' },
      { name: 'image', value: Buffer.from('not an image'), filename: 'b.png', type: 'image/png' },
      { name: 'image', value: png, type: 'image/png', filename: '' },
    ];
    for (const fields of [{ category: 'pcb', map: 'grid' }, { category: 'pcb', method: 'winclip', map: 'none' }]) {
      const res = await svc.app.inject({ method: 'POST', url: '/v1/detect/batch', ...multipart([...files, ...Object.entries(fields).map(([name, value]) => ({ name, value }))]) });
      expect(res.statusCode, res.body).toBe(200);
      const body = batchResponseSchema.parse(res.json());
      expect(body.results.map((r) => r.ok)).toEqual([true, false, true]);
      expect(() => batchResponseSchema.parse({ ...(res.json() as object), extra: 1 })).toThrow();
    }
    const tooFew = await svc.app.inject({ method: 'POST', url: '/v1/detect/batch', ...multipart([files[0], { name: 'category', value: 'pcb' }, { name: 'method', value: 'musc' }]) });
    expect(tooFew.statusCode).toBe(422);
    expect(() => errorSchema.parse(tooFew.json())).not.toThrow();
  });

  it('names the API key schemes when keys are on, and leaves the probes open', async () => {
    const secured = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', apiKeys: new ApiKeys(['k'.repeat(20)]) });
    const d = (await secured.inject({ url: '/openapi.json' })).json();
    expect(d.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(d.components.securitySchemes.apiKey).toEqual({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    expect(d.paths['/healthz'].get.security).toEqual([]);
    expect(d.paths['/v1/detect'].post.security).toBeUndefined();
    await secured.close();
  });
});

describe('GET /docs', () => {
  it('serves the browsable UI and its assets from the package (no network)', async () => {
    const page = await svc.app.inject({ url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/Swagger UI/);
    const bundle = await svc.app.inject({ url: '/docs/static/swagger-ui-bundle.js' });
    expect(bundle.statusCode).toBe(200);
    expect(bundle.body.length).toBeGreaterThan(100_000);
    const init = await svc.app.inject({ url: '/docs/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    const json = await svc.app.inject({ url: '/docs/json' });
    expect(json.json().paths).toHaveProperty('/v1/detect');
  });
});
