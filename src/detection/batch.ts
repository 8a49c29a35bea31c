// Several images of one category in one call (POST /v1/detect/batch). Each image is decoded on
// its own: one that does not decode gets its own error and the others are still scored. A
// method with a batch entry point gets every decodable image at once (MuSc: they score each
// other; dense-frequency: several per session run, each scored as /v1/detect scores it); any
// other method scores them one by one through the same path as /v1/detect, at most as many at
// a time as the pool has workers (so a batch never floods the queue).
import { ServiceError } from '../errors.ts';
import type { DecodedImage } from '../imaging/decode.ts';
import type { MethodOutcome, MethodRequest, MethodRunner, ScoringMethod } from '../methods/contract.ts';
import type { BatchItem, BatchResult, DetectOptions, DetectResponse } from './types.ts';

/** What a batch needs of the detector (ClipDetector), without importing it (no cycle). */
export interface BatchDetector {
  method(name?: string): { method: ScoringMethod; runner: MethodRunner };
  decode(bytes: Buffer): Promise<DecodedImage>;
  /** The request's prompts fit the text context (as POST /v1/detect checks them); throws BadRequestError. */
  checkPromptLengths(options: DetectOptions): void;
  scoreDecoded(req: Omit<MethodRequest, 'references'> & { method: string }): Promise<{ outcome: MethodOutcome; textMs: number }>;
  respond(image: DecodedImage, outcome: MethodOutcome, options: DetectOptions, t: { started: number; decodeMs: number; textMs: number; method: string }): Promise<DetectResponse>;
  /** How many images may be scored at a time (the pool's workers). */
  readonly capacity: number;
}

/** An image's own fault (undecodable, too large…) stays in its entry; anything else fails the batch. */
function ownError(err: unknown): err is ServiceError {
  return err instanceof ServiceError && err.statusCode < 500;
}

interface Decoded {
  index: number;
  image: DecodedImage;
  started: number;
  decodeMs: number;
}

export async function detectBatch(detector: BatchDetector, uploads: readonly Buffer[], options: DetectOptions, signal?: AbortSignal): Promise<BatchResult> {
  const { method, runner } = detector.method(options.method);
  method.validate({ prompts: options.prompts, branches: options.branches, references: 0 });
  detector.checkPromptLengths(options);
  const items = new Array<BatchItem>(uploads.length);
  const decoded: Decoded[] = [];
  await Promise.all(
    uploads.map(async (bytes, index) => {
      const started = performance.now();
      try {
        const image = await detector.decode(bytes);
        decoded.push({ index, image, started, decodeMs: performance.now() - started });
      } catch (err) {
        if (!ownError(err)) throw err;
        items[index] = { ok: false, error: err };
      }
    }),
  );
  decoded.sort((a, b) => a.index - b.index);
  const request = (d: Decoded): MethodRequest => ({
    image: d.image,
    references: [],
    category: options.category,
    prompts: options.prompts,
    threshold: options.regionThreshold ?? options.threshold,
    partMaps: options.branches && options.map !== 'none',
    memory: options.memory,
    signal,
  });
  const respond = (d: Decoded, outcome: MethodOutcome, textMs: number) =>
    detector.respond(d.image, outcome, options, { started: d.started, decodeMs: d.decodeMs, textMs, method: method.name });

  if (runner.scoreBatch) {
    const outcomes = await runner.scoreBatch(decoded.map(request));
    await Promise.all(
      decoded.map(async (d, i) => {
        const { textMs, ...outcome } = outcomes[i];
        items[d.index] = { ok: true, result: await respond(d, outcome, textMs) };
      }),
    );
    return { method: method.name, items };
  }

  // One image at a time per worker: the same scoring path as POST /v1/detect.
  let next = 0;
  const lane = async () => {
    while (next < decoded.length) {
      const d = decoded[next++];
      try {
        const { outcome, textMs } = await detector.scoreDecoded({ ...request(d), method: method.name });
        items[d.index] = { ok: true, result: await respond(d, outcome, textMs) };
      } catch (err) {
        if (!ownError(err)) throw err;
        items[d.index] = { ok: false, error: err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(detector.capacity, decoded.length)) }, lane));
  return { method: method.name, items };
}
