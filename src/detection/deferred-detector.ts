// A detector that is still loading: the server can listen (and answer /healthz, /readyz)
// while the checkpoint downloads and the graphs build; detections get 503 until then.
import { ModelLoadingError, ModelUnavailableError } from '../errors.ts';
import type { Admission, BatchResult, DetectOptions, DetectResponse, Detector, ModelInfo } from './types.ts';

/** What admit() gives while loading: nothing to release. */
const NO_COUNT: Admission = { release: () => {} };

export class DeferredDetector implements Detector {
  private inner?: Detector;
  private failure?: Error;

  /** Settles when loading does: lets the app watch the loaded detector's pool and cache. */
  readonly loading: Promise<Detector>;

  constructor(loading: Promise<Detector>) {
    this.loading = loading;
    loading.then(
      (d) => (this.inner = d),
      (err: Error) => (this.failure = err),
    );
  }

  get ready(): boolean {
    return this.inner?.ready ?? false;
  }

  private loaded(): Detector {
    if (this.inner) return this.inner;
    if (this.failure) throw new ModelUnavailableError(`the model failed to load: ${this.failure.message}`);
    throw new ModelLoadingError('the model is still loading; retry shortly');
  }

  info(): ModelInfo {
    return this.loaded().info();
  }

  detect(image: Buffer, options: DetectOptions, signal?: AbortSignal): Promise<DetectResponse> {
    return this.loaded().detect(image, options, signal);
  }

  detectBatch(images: readonly Buffer[], options: DetectOptions, signal?: AbortSignal): Promise<BatchResult> {
    const inner = this.loaded();
    if (!inner.detectBatch) throw new ModelUnavailableError('the loaded detector scores no batches');
    return inner.detectBatch(images, options, signal);
  }

  admissionFull(): boolean {
    return this.inner?.admissionFull?.() ?? false;
  }

  /** Before the model is loaded nothing is counted: detections get 503 model_loading anyway. */
  admit(): Admission | undefined {
    return this.inner?.admit ? this.inner.admit() : NO_COUNT;
  }

  async close(): Promise<void> {
    await this.inner?.close();
  }
}
