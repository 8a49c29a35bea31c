// Categories over real HTTP on the tiny model with the embedded store: CRUD, references,
// few-shot detection, calibration, detection records and feedback, and persistence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { calibrateThreshold } from '../../src/categories/calibration.ts';

let svc: TinyService;

/** A textured grey part; `defect` paints a bright square on it. */
async function part(seed: number, defect = false): Promise<Buffer> {
  const w = 96;
  const h = 64;
  const rgb = Buffer.alloc(w * h * 3);
  let s = seed * 7919 + 13;
  for (let i = 0; i < w * h; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const v = 100 + (((i % w) + Math.floor(i / w)) % 8) * 4 + (s % 9);
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
  }
  if (defect) for (let y = 20; y < 34; y++) for (let x = 40; x < 56; x++) rgb.fill(250, 3 * (y * w + x), 3 * (y * w + x) + 3);
  return sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

const json = (method: string, url: string, payload?: unknown) => svc.app.inject({ method: method as 'GET', url, payload: payload as object });
const images = (bufs: Buffer[], extra: Array<{ name: string; value: string }> = []) =>
  multipart([...bufs.map((b, i) => ({ name: 'image', value: b, filename: `good-${i}.png`, type: 'image/png' })), ...extra]);
const detect = async (image: Buffer, fields: Record<string, string>) =>
  svc.app.inject({ method: 'POST', url: '/v1/detect', ...multipart([{ name: 'image', value: image, filename: 'q.png', type: 'image/png' }, ...Object.entries(fields).map(([name, value]) => ({ name, value }))]) });

beforeAll(async () => {
  svc = await startTinyService({ keepDetectionImages: '1', referenceLimit: '8' });
});
afterAll(() => svc?.close());

describe('category resources', () => {
  it('PUT creates (201) then updates (200); GET, list and DELETE; the models list says categories exist', async () => {
    const created = await json('PUT', '/v1/categories/plate-a', { name: 'metal plate', targetFalseAlarmRate: 0.2, notes: 'line 3' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'plate-a', name: 'metal plate', defaultMethod: 'dense-frequency', targetFalseAlarmRate: 0.2, notes: 'line 3', references: { count: 0, limit: 8 }, calibration: null, needsReembedding: false });
    const updated = await json('PUT', '/v1/categories/plate-a', { notes: 'line 4' });
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({ name: 'metal plate', notes: 'line 4', targetFalseAlarmRate: 0.2 });
    expect((await json('GET', '/v1/categories/plate-a')).json().notes).toBe('line 4');
    expect((await json('GET', '/v1/categories')).json().categories.map((c: { id: string }) => c.id)).toContain('plate-a');
    await json('PUT', '/v1/categories/temp', {});
    expect((await json('DELETE', '/v1/categories/temp')).statusCode).toBe(204);
    expect((await json('GET', '/v1/categories/temp')).statusCode).toBe(404);
    expect((await json('GET', '/v1/models')).json().capabilities).toEqual(expect.arrayContaining(['detect', 'categories', 'feedback']));
  });

  it.each([
    ['an unknown id', 'GET', '/v1/categories/nope', undefined, 404, /does not exist/],
    ['an invalid id', 'PUT', `/v1/categories/${encodeURIComponent('a<b>')}`, {}, 400, /category id/],
    ['an unknown field', 'PUT', '/v1/categories/x', { colour: 'red' }, 400, /colour/],
    ['a false-alarm rate out of range', 'PUT', '/v1/categories/x', { targetFalseAlarmRate: 2 }, 400, /targetFalseAlarmRate/],
    // No calibration could reach it (and 1e-16 once hung the calibration).
    ['a false-alarm rate below 1 in 10,000', 'PUT', '/v1/categories/x', { targetFalseAlarmRate: 1e-16 }, 400, /targetFalseAlarmRate must be at least 0.0001/],
    ['an unknown default method', 'PUT', '/v1/categories/x', { defaultMethod: 'patchcore' }, 400, /defaultMethod/],
  ])('%s → %i', async (_name, method, url, body, status, message) => {
    const res = await json(method, url, body);
    expect(res.statusCode).toBe(status);
    expect(res.json().message).toMatch(message);
  });

  it('a body that is not JSON is a 415, not an empty update; a 100-character non-Latin id is served', async () => {
    const form = await svc.app.inject({ method: 'PUT', url: '/v1/categories/plate-b', ...multipart([{ name: 'name', value: 'foo' }]) });
    expect(form.statusCode).toBe(415);
    expect(form.json().message).toMatch(/takes a JSON body: send it with Content-Type: application\/json \(got multipart\/form-data\)/);
    const text = await svc.app.inject({ method: 'PUT', url: '/v1/categories/plate-b', headers: { 'content-type': 'text/plain' }, payload: 'name=foo' });
    expect(text.statusCode).toBe(415);
    expect((await json('GET', '/v1/categories/plate-b')).statusCode).toBe(404);
    // 100 Devanagari letters: 900 characters percent-encoded, past the router's default 100.
    const long = 'क'.repeat(100);
    // (Its own name: the id alone would be too long for the prompt templates.)
    const created = await json('PUT', `/v1/categories/${encodeURIComponent(long)}`, { name: 'long plate' });
    expect(created.statusCode).toBe(201);
    expect(created.json().id).toBe(long);
    const tooLong = await json('PUT', `/v1/categories/${encodeURIComponent(long + 'क')}`, {});
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().message).toMatch(/longer than 100 characters/);
  });

  it('the same category under composed, decomposed and fullwidth spellings (NFKC)', async () => {
    expect((await json('PUT', `/v1/categories/${encodeURIComponent('café')}`, {})).statusCode).toBe(201);
    expect((await json('GET', `/v1/categories/${encodeURIComponent('cafe\u0301')}`)).statusCode).toBe(200);
    expect((await json('PUT', `/v1/categories/${encodeURIComponent('ｍｅｔａｌ')}`, {})).json().id).toBe('metal');
    // The name (the prompt text) is normalised as a detection's category is: the same prompts either way.
    expect((await json('PUT', '/v1/categories/metal', { name: '  ｍｅｔａｌ   plate ' })).json().name).toBe('metal plate');
  });
});

describe('references, few-shot detection and calibration', () => {
  it('stores references with thumbnails; refuses damaged ones naming the file, and more than the limit', async () => {
    await json('PUT', '/v1/categories/tile', { name: 'tile', targetFalseAlarmRate: 0.3 });
    // Part 7 twice in one upload: stored once, the second copy listed as a duplicate of the first.
    const add = await svc.app.inject({ method: 'POST', url: '/v1/categories/tile/references', ...images(await Promise.all([1, 2, 3, 4, 5, 6, 7, 7].map((s) => part(s)))) });
    expect(add.statusCode).toBe(201);
    const body = add.json();
    expect(body.references).toEqual({ count: 7, limit: 8 });
    expect(body.duplicates).toEqual([{ index: 7, filename: 'good-7.png', sha256: body.added[6].sha256, referenceId: body.added[6].id }]);
    expect(body.added[0]).toMatchObject({ width: 96, height: 64 });
    expect(body.added[0].thumbnail).toMatch(/^data:image\/jpeg;base64,/);
    const listed = (await json('GET', '/v1/categories/tile/references')).json().references;
    expect(listed).toHaveLength(7);

    // The same image again (a retry) is not stored twice, nor encoded: 200, nothing added, the holder named.
    const again = await svc.app.inject({ method: 'POST', url: '/v1/categories/tile/references', ...images([await part(3)]) });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ added: [], duplicates: [{ index: 0, filename: 'good-0.png', referenceId: body.added[2].id }], references: { count: 7, limit: 8 } });

    const broken = await svc.app.inject({ method: 'POST', url: '/v1/categories/tile/references', ...images([await part(8), (await part(9)).subarray(0, 80)]) });
    expect(broken.statusCode).toBe(422);
    expect(broken.json().message).toMatch(/image 2 \(good-1\.png\)/);
    expect((await json('GET', '/v1/categories/tile')).json().references.count).toBe(7);

    const tooMany = await svc.app.inject({ method: 'POST', url: '/v1/categories/tile/references', ...images([await part(8), await part(9)]) });
    expect(tooMany.statusCode).toBe(409);
    expect(tooMany.json()).toMatchObject({ error: 'reference_limit', message: expect.stringMatching(/at most 8 references/) });
    expect((await json('GET', '/v1/categories/tile')).json().references.count).toBe(7);
    expect((await svc.app.inject({ method: 'POST', url: '/v1/categories/nope/references', ...images([await part(8)]) })).statusCode).toBe(404);
  });

  it('a stored category uses its references: the response says so and the few-shot part changes the score', async () => {
    const query = await part(20, true);
    const zero = (await detect(query, { category: 'tile', map: 'none', method: 'dense-frequency', threshold: '0.5', branches: 'true' })).json();
    expect(zero.categoryResource).toEqual({ id: 'tile', references: 7, calibrated: false });
    expect(zero.thresholdSource).toBe('request');
    expect(zero.branches.fewShot.score).toBeGreaterThan(0);
    const plain = (await detect(query, { category: 'tile-unknown', map: 'none' })).json();
    expect(plain.categoryResource).toBeNull();
    expect(plain.thresholdSource).toBe('default');
    expect(plain.calibrated).toBe(false);
    expect(plain.summary).toMatch(/not calibrated/);
    expect(plain.branches).toBeUndefined();
  });

  it('calibration: too few normals → 422 with the number needed; leave-one-out over 7 references at 30% works', async () => {
    const tooFew = await svc.app.inject({ method: 'POST', url: '/v1/categories/tile/calibrate', ...images([await part(30)]) });
    expect(tooFew.statusCode).toBe(422);
    expect(tooFew.json().message).toMatch(/at least \d+ normal images/);
    const loo = await json('POST', '/v1/categories/tile/calibrate', { source: 'references' });
    expect(loo.statusCode).toBe(200);
    const c = loo.json();
    expect(c).toMatchObject({ source: 'references', m: 7, method: 'dense-frequency', targetFalseAlarmRate: 0.3 });
    expect(c.confidence).toBeGreaterThanOrEqual(0.9);
    expect(c.scores).toHaveLength(7);
    expect(c.guarantee).toMatch(/P\(false-alarm rate > 30%\)/);
    expect((await json('GET', '/v1/categories/tile')).json().calibration).toMatchObject({ threshold: c.threshold, referenceCount: 7, current: true });
    const after = (await detect(await part(21), { category: 'tile', map: 'none' })).json();
    expect(after.thresholdSource).toBe('category calibration');
    expect(after.calibrated).toBe(true);
    expect(after.threshold).toBe(c.threshold);
    expect(after.summary).toMatch(/calibrated threshold/);

    // A false alarm joins the calibration once: its score is the 8th normal score, and feedback sent again changes nothing.
    const joined = await json('POST', `/v1/detections/${after.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' });
    expect(joined.statusCode).toBe(200);
    const once = (await json('GET', '/v1/categories/tile')).json().calibration;
    expect(once).toMatchObject({ m: 8, current: true, addedDetections: [after.detectionId] });
    expect(once.scores.some((v: number) => Math.abs(v - after.score) < 1e-6)).toBe(true);
    await json('POST', `/v1/detections/${after.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' });
    expect((await json('GET', '/v1/categories/tile')).json().calibration).toMatchObject({ m: 8, calibratedAt: once.calibratedAt });
    expect(after.regionThreshold).toBe(c.pixelThreshold);
    expect(after.categoryResource).toEqual({ id: 'tile', references: 7, calibrated: true });

    // Other prompts than the calibration's: the default threshold, and the answer says why.
    const custom = (await detect(await part(22), { category: 'tile', map: 'none', prompts: 'custom', normal: 'a clean {}', abnormal: 'a cracked {}' })).json();
    expect(custom).toMatchObject({ thresholdSource: 'default', calibrated: false, threshold: 0.5, regionThreshold: 0.5, calibrationNotUsed: expect.stringMatching(/scored its normals with templated prompts, this detection uses custom ones/) });
    expect(custom.summary).toMatch(/threshold 0\.50, default: the category's calibration is for templated prompts\)/);
    expect(custom.categoryResource.calibrated).toBe(false);
    // The request's own threshold: the verdict is not calibrated, the category still is; such a detection cannot join the calibration.
    const own = (await detect(await part(23), { category: 'tile', map: 'none', threshold: '0.2' })).json();
    expect(own).toMatchObject({ thresholdSource: 'request', calibrated: false, categoryResource: { calibrated: true } });
    expect(own.calibrationNotUsed).toBeUndefined();
    const mixed = await json('POST', `/v1/detections/${own.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' });
    expect(mixed.statusCode).toBe(409);
    expect(mixed.json().message).toMatch(/did not use the category's calibration/);
  });

  it('detections are recorded and listed; feedback is stored, counted, and can add a false alarm to the references', async () => {
    const res = (await detect(await part(40), { category: 'tile', map: 'none', metadata: JSON.stringify({ station: 'A3', serial: '123' }) })).json();
    expect(res.detectionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.metadata).toEqual({ station: 'A3', serial: '123' });
    const listed = (await json('GET', '/v1/detections?category=tile&limit=5')).json().detections;
    expect(listed[0]).toMatchObject({ id: res.detectionId, categoryId: 'tile', metadata: { station: 'A3', serial: '123' }, feedback: null, hasImage: true });
    const fb = await json('POST', `/v1/detections/${res.detectionId}/feedback`, { label: 'normal', note: 'glare', addTo: 'references' });
    expect(fb.statusCode).toBe(200);
    expect(fb.json().feedback).toMatchObject({ label: 'normal', note: 'glare' });
    expect((await json('GET', '/v1/categories/tile')).json().references.count).toBe(8);
    // Sent again (a second click): the image is already a reference, nothing is added.
    expect((await json('POST', `/v1/detections/${res.detectionId}/feedback`, { label: 'normal', note: 'glare', addTo: 'references' })).statusCode).toBe(200);
    expect((await json('GET', '/v1/categories/tile')).json().references.count).toBe(8);
    const metrics = (await svc.app.inject({ url: '/metrics' })).body;
    // Every feedback is counted, repeated ones too: two here, two in the calibration test.
    expect(metrics).toMatch(/detection_feedback_total\{category="tile",label="normal"\} 4/);
    expect((await json('POST', `/v1/detections/${res.detectionId}/feedback`, { label: 'maybe' })).statusCode).toBe(400);
    expect((await json('POST', '/v1/detections/00000000-0000-4000-8000-000000000000/feedback', { label: 'normal' })).statusCode).toBe(404);
    // With an 8th reference the 7-reference calibration no longer describes the scores, and the category says so.
    expect((await detect(await part(41), { category: 'tile', map: 'none' })).json().thresholdSource).toBe('default');
    const stale = (await json('GET', '/v1/categories/tile')).json().calibration;
    expect(stale).toMatchObject({ current: false, outdated: expect.stringMatching(/made with 7 references, the category now has 8/) });
    const late = (await detect(await part(42), { category: 'tile', map: 'none' })).json();
    expect(late.calibrationNotUsed).toMatch(/made with 7 references, the category now has 8/);
    expect(late.summary).toMatch(/default: the category's calibration is out of date\)/);
  });

  it("a calibration holds for the category's prompt name and target rate it was made with; a batch-only default method is refused", async () => {
    await json('PUT', '/v1/categories/slab', { name: 'slab', targetFalseAlarmRate: 0.3 });
    await svc.app.inject({ method: 'POST', url: '/v1/categories/slab/references', ...images(await Promise.all([71, 72, 73, 74, 75, 76, 77].map((s) => part(s)))) });
    expect((await json('POST', '/v1/categories/slab/calibrate', { source: 'references' })).statusCode).toBe(200);
    expect((await json('GET', '/v1/categories/slab')).json().calibration).toMatchObject({ current: true, name: 'slab', prompts: 'templated', scoringKey: expect.stringMatching(/^dense-frequency:/) });
    await json('PUT', '/v1/categories/slab', { name: 'stone slab' });
    expect((await json('GET', '/v1/categories/slab')).json().calibration).toMatchObject({ current: false, outdated: expect.stringMatching(/made for the prompt name "slab", the category's is now "stone slab"/) });
    await json('PUT', '/v1/categories/slab', { name: 'slab', targetFalseAlarmRate: 0.2 });
    expect((await json('GET', '/v1/categories/slab')).json().calibration).toMatchObject({ current: false, outdated: expect.stringMatching(/target false-alarm rate of 0.3, the category now asks 0.2/) });
    await json('PUT', '/v1/categories/slab', { targetFalseAlarmRate: 0.3 });
    expect((await json('GET', '/v1/categories/slab')).json().calibration.current).toBe(true);
    const musc = await json('PUT', '/v1/categories/slab', { defaultMethod: 'musc' });
    expect(musc.statusCode).toBe(400);
    expect(musc.json().message).toMatch(/scores batches only/);
  });

  it('a calibration holds for its own references (not as many others), its own normals, and detections made under it', async () => {
    await json('PUT', '/v1/categories/brick', { targetFalseAlarmRate: 0.3 });
    const parts = await Promise.all([101, 102, 103, 104, 105, 106, 107].map((s) => part(s)));
    const refs = (await svc.app.inject({ method: 'POST', url: '/v1/categories/brick/references', ...images(parts) })).json().added;
    const heldOut = await Promise.all([111, 112, 113, 114, 115, 116, 117].map((s) => part(s)));
    // Held-out normals must be other images than the references, each once.
    const withRef = await svc.app.inject({ method: 'POST', url: '/v1/categories/brick/calibrate', ...images([...heldOut.slice(0, 6), parts[2]]) });
    expect(withRef.statusCode).toBe(400);
    expect(withRef.json().message).toMatch(/image 7 \(good-6\.png\) is one of the category's references/);
    const twice = await svc.app.inject({ method: 'POST', url: '/v1/categories/brick/calibrate', ...images([...heldOut.slice(0, 6), heldOut[1]]) });
    expect(twice.json().message).toMatch(/image 7 \(good-6\.png\) is the same image as image 2/);
    // Nor an empty body: it once recalibrated leave-one-out unasked.
    const empty = await svc.app.inject({ method: 'POST', url: '/v1/categories/brick/calibrate' });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().message).toMatch(/held-out normal images .* or \{"source": "references"\}/);

    const made = await svc.app.inject({ method: 'POST', url: '/v1/categories/brick/calibrate', ...images(heldOut) });
    expect(made.statusCode).toBe(200);
    expect(made.json()).toMatchObject({ source: 'images', m: 7, requestedConfidence: 0.9, referencesKey: expect.any(String) });
    const before = (await detect(await part(120), { category: 'brick', map: 'none' })).json();
    expect(before.thresholdSource).toBe('category calibration');
    // Recalibrated: a detection made under the earlier calibration cannot join this one.
    await new Promise((r) => setTimeout(r, 5));
    expect((await json('POST', '/v1/categories/brick/calibrate', { source: 'references' })).statusCode).toBe(200);
    const stale = await json('POST', `/v1/detections/${before.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().message).toMatch(/made before the category's current calibration/);
    // One made under it can, and the answer says what it did; the rank uses the confidence asked for (0.9), not the one achieved.
    const now = (await detect(await part(121), { category: 'brick', map: 'none' })).json();
    const joined = (await json('POST', `/v1/detections/${now.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' })).json();
    const fresh = calibrateThreshold([...(await json('GET', '/v1/categories/brick')).json().calibration.scores], 0.3, 0.9);
    expect(joined.addedTo.calibration).toMatchObject({ alreadyIncluded: false, m: 8, threshold: fresh.threshold });
    expect((await json('POST', `/v1/detections/${now.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' })).json().addedTo.calibration).toMatchObject({ alreadyIncluded: true, m: 8 });

    // As many references, but not the same ones: out of date.
    expect((await json('DELETE', `/v1/categories/brick/references/${refs[0].id}`)).statusCode).toBe(204);
    await svc.app.inject({ method: 'POST', url: '/v1/categories/brick/references', ...images([await part(130)]) });
    expect((await json('GET', '/v1/categories/brick')).json()).toMatchObject({
      references: { count: 7 },
      calibration: { current: false, outdated: expect.stringMatching(/made with other references than the category's now \(as many, 7/) },
    });

    // A retry sent while the first upload is in flight: one copy stored, and the retry names it.
    // (REFERENCE_LIMIT is 8 here: the category has 7, the retry's copy does not count against it.)
    const one = [await part(140)];
    const [a, b] = await Promise.all([0, 1].map(() => svc.app.inject({ method: 'POST', url: '/v1/categories/brick/references', ...images(one) })));
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 201]);
    const [first, second] = a.statusCode === 201 ? [a.json(), b.json()] : [b.json(), a.json()];
    expect(first.added).toHaveLength(1);
    expect(second.added).toEqual([]);
    expect(second.duplicates).toEqual([{ index: 0, filename: 'good-0.png', sha256: first.added[0].sha256, referenceId: first.added[0].id }]);
    expect(second.references.count).toBe(8);
  });

  it('feedback cannot count a calibration normal or a reference again; a calibration stored before requestedConfidence keeps its confidence', async () => {
    await json('PUT', '/v1/categories/flag', { targetFalseAlarmRate: 0.3 });
    const refImage = await part(161);
    await svc.app.inject({ method: 'POST', url: '/v1/categories/flag/references', ...images([refImage]) });
    const heldOut = await Promise.all([162, 163, 164, 165, 166, 167, 168].map((s) => part(s)));
    const made = await svc.app.inject({ method: 'POST', url: '/v1/categories/flag/calibrate', ...images(heldOut) });
    expect(made.statusCode).toBe(200);
    // Options in the query string beside the body are refused, as on the detect routes.
    expect((await svc.app.inject({ method: 'POST', url: '/v1/categories/flag/calibrate?confidence=0.99', ...images(heldOut) })).statusCode).toBe(400);
    // A held-out normal detected again: already counted.
    const again = (await detect(heldOut[0], { category: 'flag', map: 'none' })).json();
    const counted = (await json('POST', `/v1/detections/${again.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' })).json();
    expect(counted.addedTo.calibration).toMatchObject({ alreadyIncluded: true, m: 7 });
    // A reference: its score against a memory that holds it is not a normal score like the others.
    const ref = (await detect(refImage, { category: 'flag', map: 'none' })).json();
    const refused = await json('POST', `/v1/detections/${ref.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toMatch(/one of the category's references/);
    // A calibration stored before requestedConfidence existed: feedback recomputes at the confidence it achieved, never less.
    const stored = (await json('GET', '/v1/categories/flag')).json().calibration;
    const { requestedConfidence: _, current: __, outdated: ___, ...old } = stored;
    await svc.categories.store.setCalibration('flag', old);
    const fresh = (await detect(await part(169), { category: 'flag', map: 'none' })).json();
    expect(fresh.thresholdSource).toBe('category calibration');
    await json('POST', `/v1/detections/${fresh.detectionId}/feedback`, { label: 'normal', addTo: 'calibration' });
    const after = (await json('GET', '/v1/categories/flag')).json().calibration;
    expect(after).toMatchObject({ m: 8, requestedConfidence: stored.confidence });
    expect(after.confidence).toBeGreaterThanOrEqual(stored.confidence);
    // A name too long for the prompt templates is refused when it is set, not at each detection.
    const long = await json('PUT', '/v1/categories/flag', { name: '金'.repeat(100) });
    expect(long.statusCode).toBe(400);
    expect(long.json().message).toMatch(/inside the prompt templates/);
  });

  it("a false alarm added to the references says so, and that the calibration is now out of date; text lists only zero-shot records", async () => {
    await json('PUT', '/v1/categories/tile-b', { name: 'tile b', targetFalseAlarmRate: 0.3 });
    await svc.app.inject({ method: 'POST', url: '/v1/categories/tile-b/references', ...images(await Promise.all([151, 152, 153, 154, 155, 156, 157].map((s) => part(s)))) });
    await json('POST', '/v1/categories/tile-b/calibrate', { source: 'references' });
    const d = (await detect(await part(158), { category: 'tile-b', map: 'none' })).json();
    const fb = (await json('POST', `/v1/detections/${d.detectionId}/feedback`, { label: 'normal', addTo: 'references' })).json();
    expect(fb.addedTo.references).toMatchObject({ referenceId: expect.any(String), alreadyHeld: false, count: 8, calibrationOutdated: expect.stringMatching(/made with 7 references/) });
    const again = (await json('POST', `/v1/detections/${d.detectionId}/feedback`, { label: 'normal', addTo: 'references' })).json();
    expect(again.addedTo.references).toMatchObject({ referenceId: fb.addedTo.references.referenceId, alreadyHeld: true, count: 8 });
    // "tile b" is the stored category's prompt name: as text it lists the zero-shot records of that name only.
    const zero = (await detect(await part(159), { category: 'tile b x', map: 'none' })).json();
    expect(zero.categoryResource).toBeNull();
    const byText = (await json('GET', `/v1/detections?category=${encodeURIComponent('tile b')}`)).json().detections;
    expect(byText).toEqual([]);
    expect((await json('GET', `/v1/detections?category=${encodeURIComponent('tile b x')}`)).json().detections.map((r: { id: string }) => r.id)).toEqual([zero.detectionId]);
    // A body that is JSON but not an object of fields.
    const nul = await svc.app.inject({ method: 'PUT', url: '/v1/categories/tile-b', headers: { 'content-type': 'application/json' }, payload: 'null' });
    expect(nul.statusCode).toBe(400);
    expect(nul.json().message).toMatch(/must be an object of fields.*got null/);
    const str = await svc.app.inject({ method: 'PUT', url: '/v1/categories/tile-b', headers: { 'content-type': 'application/json' }, payload: '"references"' });
    expect(str.json().message).toMatch(/got string/);
  });

  it('query and field errors say what to send', async () => {
    const list = async (q: string) => (await json('GET', `/v1/detections?${q}`)).json().message;
    expect(await list('limit=1&limit=2')).toMatch(/limit is given twice/);
    expect(await list('limit=0x10')).toMatch(/limit must be a whole number from 1 to 500/);
    expect(await list('limit=1e2')).toMatch(/limit must be a whole number/);
    expect(await list('limit=501')).toMatch(/limit must be at most 500/);
    expect(await list('verdict=bad')).toMatch(/verdict must be "anomalous" or "normal"/);
    expect((await json('GET', '/v1/detections?limit=2')).statusCode).toBe(200);
    const calibrate = async (body: object) => (await json('POST', '/v1/categories/tile/calibrate', body)).json().message;
    expect(await calibrate({ source: 'references', confidence: true })).toMatch(/confidence must be a number from 0.5 to 0.9999/);
    expect(await calibrate({ source: 'references', confidence: null })).toMatch(/confidence must be a number/);
    expect(await calibrate({ source: 'elsewhere' })).toMatch(/source must be "references"/);
    const both = await svc.app.inject({ method: 'POST', url: '/v1/categories/tile/calibrate', ...images([await part(90)], [{ name: 'source', value: 'references' }]) });
    expect(both.statusCode).toBe(400);
    expect(both.json().message).toMatch(/either held-out images or source=references/);
    expect((await detect(await part(91), { category: 'tile', map: 'none', branches: 'yes' })).json().message).toMatch(/branches: must be true or false/);
  });

  it('metadata that is not a small object of strings → 400', async () => {
    for (const bad of ['[1,2]', '{"a":1}', JSON.stringify(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])))]) {
      const res = await detect(await part(50), { category: 'tile', map: 'none', metadata: bad });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(/metadata/);
    }
  });
});

describe('WinCLIP and stored references', () => {
  it('method=winclip on a stored category uses its stored reference images as WinCLIP+ does request ones', async () => {
    await json('PUT', '/v1/categories/wtile', { name: 'tile', defaultMethod: 'winclip' });
    const query = await part(60, true);
    const zeroShot = (await detect(query, { category: 'tile-zero-shot', method: 'winclip', map: 'none' })).json();
    await svc.app.inject({ method: 'POST', url: '/v1/categories/wtile/references', ...images([await part(61), await part(62)]) });
    const stored = (await detect(query, { category: 'wtile', map: 'none' })).json();
    expect(stored.method).toBe('winclip');
    expect(stored.categoryResource).toMatchObject({ id: 'wtile', references: 2 });
    const sent = await svc.app.inject({
      method: 'POST',
      url: '/v1/detect',
      ...multipart([
        { name: 'image', value: query, filename: 'q.png', type: 'image/png' },
        { name: 'reference', value: await part(61), filename: 'r1.png', type: 'image/png' },
        { name: 'reference', value: await part(62), filename: 'r2.png', type: 'image/png' },
        { name: 'category', value: 'tile' },
        { name: 'method', value: 'winclip' },
        { name: 'map', value: 'none' },
      ]),
    });
    // The same two normal images, stored or sent, give the same WinCLIP+ score.
    expect(stored.score).toBeCloseTo(sent.json().score, 6);
    expect(stored.score).not.toBe(zeroShot.score);
  });
});

describe('a model change', () => {
  it('lists the categories whose references need re-embedding, and POST /v1/reembed computes them from the stored images', async () => {
    const other = await startTinyService({ dataDir: svc.settings.dataDir, denseLayers: '3,4', winclip: '0' });
    try {
      const before = (await other.app.inject({ url: '/v1/categories/tile' })).json();
      expect(before.needsReembedding).toBe(true);
      const re = await other.app.inject({ method: 'POST', url: '/v1/reembed' });
      expect(re.statusCode).toBe(200);
      expect(re.json().categories).toContain('tile');
      expect((await other.app.inject({ url: '/v1/categories/tile' })).json().needsReembedding).toBe(false);
      const res = await other.app.inject({
        method: 'POST',
        url: '/v1/detect',
        ...multipart([{ name: 'image', value: await part(70, true), filename: 'q.png', type: 'image/png' }, { name: 'category', value: 'tile' }, { name: 'map', value: 'none' }, { name: 'branches', value: 'true' }]),
      });
      expect(res.json().branches.fewShot.score).toBeGreaterThan(0);
    } finally {
      await other.close();
    }
  });
});

describe('persistence', () => {
  it('a restarted service on the same data folder has the categories, references and records', async () => {
    const again = await startTinyService({ dataDir: svc.settings.dataDir, keepDetectionImages: '1' });
    try {
      const tile = (await again.app.inject({ url: '/v1/categories/tile' })).json();
      expect(tile.references.count).toBe(8);
      expect((await again.app.inject({ url: '/v1/detections?category=tile' })).json().detections.length).toBeGreaterThan(0);
    } finally {
      await again.close();
    }
  });
});
