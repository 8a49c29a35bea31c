// MuSc (Li et al., ICLR 2024) as a scoring method: zero-shot, no prompts, no training. The
// images of one batch score each other (musc.ts): a patch is anomalous when no other image of
// the batch has a patch like it. So MuSc only scores batches (POST /v1/detect/batch, at least
// MUSC_MIN_IMAGES images with the category's stored references, which join the pool as
// known-normal images), and its scores are batch-relative: RsCIN min–max normalises the raw
// image scores over the batch (to 0–1) and averages each with those of its most similar images
// (by image embedding), so a score says how an image stands among the images it came with.
//
// Its own graph (token-graph.ts) gives the patch tokens of four blocks; the worker task module
// (worker-task.ts) encodes the images and runs the mutual scoring, off the main thread.
import { createHash } from 'node:crypto';
import { badRequest, UnprocessableError } from '../../errors.ts';
import type { DecodedImage } from '../../imaging/decode.ts';
import { rgbForWorker } from '../worker-image.ts';
import type { MethodContext, MethodOutcome, MethodRequest, MethodRunner, ReferenceMemory, ScoringMethod } from '../contract.ts';
import { defaultMuscLayers } from './features.ts';
import { MUSC_MIN_IMAGES } from './min-images.ts';
import { MUSC_GRAPH, tokenGraphSpec, type TokenGraphOptions } from './token-graph.ts';
import { MUSC_ENCODE_TASK, MUSC_SCORE_TASK, type MuscEncoded, type MuscOutcome, type MuscScorePayload } from './worker-task.ts';

export const MUSC = 'musc';

/** Images per encode task: a worker's share of a batch, and a bound on one message's pixels. */
const ENCODE_TASK_IMAGES = 16;

/** Stored normal references of a category that join a batch's pool (the newest). */
export const MUSC_REFERENCE_LIMIT = 16;

export const musc: ScoringMethod = {
  name: MUSC,
  description: 'MuSc (ICLR 2024): the images of a batch score each other; zero-shot, no prompts, batches of at least 5 only (POST /v1/detect/batch)',
  switchedOffBy: 'MUSC=0',
  batchOnly: true,
  // MuSc reads no text: the default mode is accepted (and ignored), the others are refused.
  promptModes: ['templated'],
  taskModules: [new URL('./worker-task.ts', import.meta.url).href],
  graphs: ({ imageSize, config }) => [tokenGraphSpec({ imageSize, layers: defaultMuscLayers(config.vision.layers) })],
  validate(options) {
    if (options.prompts.mode !== 'templated') throw badRequest(`prompts: MuSc uses no prompts; prompts=${options.prompts.mode} is refused with method=musc`);
    if (options.branches) throw badRequest('branches: branches are part of method=dense-frequency; MuSc has none');
    if (options.references) throw badRequest('reference: MuSc takes no request references; a stored category\'s references join its batch');
  },
  open: (ctx) => new MuscRunner(ctx),
};

/** One image of a batch's pool: a query (its request's index) or a known normal (-1). */
interface PoolImage {
  image: DecodedImage;
  query: number;
  /** Content hash: the pool is encoded and scored in this order, whatever the upload order. */
  key: string;
}

export class MuscRunner implements MethodRunner {
  readonly references: ReferenceMemory = { from: 'images', limit: MUSC_REFERENCE_LIMIT, memory: (images) => images };

  constructor(private readonly ctx: MethodContext) {}

  private get graph(): TokenGraphOptions {
    const g = this.ctx.runtime.extraGraphs[MUSC_GRAPH];
    if (!g) throw new Error('the runtime was loaded without the musc graph');
    return g.spec.options as TokenGraphOptions;
  }

  /** Encodes and scores a batch of five grey levels: the session, the kernels and the task. */
  async warmUp(): Promise<void> {
    const size = this.ctx.runtime.graphOptions.imageSize;
    const blank = (v: number): DecodedImage => ({ width: size, height: size, rgb: Buffer.alloc(size * size * 3, v), format: 'raw' });
    const requests = [64, 96, 128, 160, 192].map((v) => ({ image: blank(v), references: [], category: 'object', prompts: { mode: 'templated' as const }, threshold: 0.5, partMaps: false }));
    await this.scoreBatch(requests);
  }

  score(): Promise<MethodOutcome & { textMs: number }> {
    return Promise.reject(badRequest(`method=musc scores a batch of images against each other (at least ${MUSC_MIN_IMAGES}); send them to POST /v1/detect/batch`));
  }

  /**
   * The requests' images and their category's stored references (the first request's memory)
   * scored mutually; answers in request order. Fewer than MUSC_MIN_IMAGES in the pool: 422.
   */
  async scoreBatch(requests: MethodRequest[]): Promise<Array<MuscOutcome & { textMs: number }>> {
    const normals = (requests[0]?.memory as readonly DecodedImage[] | undefined) ?? [];
    const total = requests.length + normals.length;
    if (total < MUSC_MIN_IMAGES) {
      const stored = normals.length ? ` and ${normals.length} stored reference${normals.length === 1 ? '' : 's'}` : '';
      throw new UnprocessableError(`method=musc scores the images of a batch against each other and needs at least ${MUSC_MIN_IMAGES} images; got ${requests.length} that decode${stored}`);
    }
    const signal = requests[0].signal;
    const pool: PoolImage[] = [...requests.map((r, i) => ({ image: r.image, query: i })), ...normals.map((image) => ({ image, query: -1 }))].map((p) => ({
      ...p,
      key: contentKey(p.image),
    }));
    // A canonical order (content, then query index for identical images): every upload order
    // gives the same session runs and the same scoring input, so the same bits.
    pool.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.query - b.query));

    const r = this.ctx.runtime;
    const graph = this.graph;
    const preprocess = { ...r.preprocess, size: graph.imageSize };
    const chunks: PoolImage[][] = [];
    for (let i = 0; i < pool.length; i += ENCODE_TASK_IMAGES) chunks.push(pool.slice(i, i + ENCODE_TASK_IMAGES));
    const encoded = await Promise.all(
      chunks.map((chunk) => r.pool.runTask<MuscEncoded>(MUSC_ENCODE_TASK, { images: chunk.map((p) => rgbForWorker(p.image)), preprocess }, [], signal)),
    );
    const tokens = new Float32Array(encoded.reduce((n, e) => n + e.tokens.length, 0));
    const embeds = new Float32Array(encoded.reduce((n, e) => n + e.embeds.length, 0));
    let at = 0;
    let atEmbed = 0;
    for (const e of encoded) {
      tokens.set(e.tokens, at);
      embeds.set(e.embeds, atEmbed);
      at += e.tokens.length;
      atEmbed += e.embeds.length;
    }
    const encodeMs = encoded.reduce((n, e) => n + e.encodeMs, 0);

    // The scoring task wants the queries first: pool positions of the queries, then the normals.
    const order = [...pool.keys()].sort((a, b) => Number(pool[a].query < 0) - Number(pool[b].query < 0) || a - b);
    const perTokens = tokens.length / pool.length;
    const perEmbed = embeds.length / pool.length;
    const qTokens = new Float32Array(tokens.length);
    const qEmbeds = new Float32Array(embeds.length);
    order.forEach((from, to) => {
      qTokens.set(tokens.subarray(from * perTokens, (from + 1) * perTokens), to * perTokens);
      qEmbeds.set(embeds.subarray(from * perEmbed, (from + 1) * perEmbed), to * perEmbed);
    });
    const queries = order.filter((i) => pool[i].query >= 0).map((i) => pool[i]);
    const payload: MuscScorePayload = {
      tokens: qTokens,
      embeds: qEmbeds,
      images: pool.length,
      layers: graph.layers.length,
      grid: r.grid,
      width: r.config.vision.width,
      embedDim: r.dim,
      imageSize: graph.imageSize,
      queries: queries.map((p) => ({ width: p.image.width, height: p.image.height, threshold: requests[p.query].threshold })),
    };
    const scored = await r.pool.runTask<MuscOutcome[]>(MUSC_SCORE_TASK, payload, [qTokens.buffer as ArrayBuffer, qEmbeds.buffer as ArrayBuffer], signal);
    const out = new Array<MuscOutcome & { textMs: number }>(requests.length);
    // Timings are the whole batch's: every image's encode and score time is shared.
    queries.forEach((p, i) => (out[p.query] = { ...scored[i], encodeMs, textMs: 0 }));
    return out;
  }
}

function contentKey(image: DecodedImage): string {
  return createHash('sha256').update(`${image.width}x${image.height}:`).update(image.rgb).digest('hex');
}
