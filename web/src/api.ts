// The HTTP client: every call the page makes, the API key (sessionStorage only, sent as
// Authorization: Bearer), and one error type carrying the server's {error, message}.
import type {
  BatchResponse,
  Calibration,
  Capability,
  Category,
  CategoryInput,
  DetectResponse,
  DetectionRecord,
  FeedbackInput,
  ModelsResponse,
  Reference,
} from './types.ts';

const KEY_STORAGE = 'clip-anomaly.api-key';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** "401 unauthorized: A valid API key is required…", or the network failure as it is. */
  describe(): string {
    return this.status ? `${this.status} ${this.code}: ${this.message}` : this.message;
  }
}

type Body = { json: unknown } | { form: FormData } | undefined;

const enc = encodeURIComponent;

export class Api {
  /** Called on every 401, e.g. to open the API key field. */
  onUnauthorized: (err: ApiError) => void = () => {};

  constructor(private readonly base = '') {}

  get key(): string | null {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  set key(value: string | null) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  private async send(method: string, path: string, body?: Body, signal?: AbortSignal, accept = 'application/json'): Promise<Response> {
    const headers: Record<string, string> = { accept };
    const key = this.key;
    if (key) headers.authorization = `Bearer ${key}`;
    let payload: BodyInit | undefined;
    if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body) {
      payload = body.form;
    }
    let res: Response;
    try {
      res = await fetch(this.base + path, { method, headers, body: payload, signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ApiError(0, 'network', `The server could not be reached (${(err as Error).message}). Is it running?`);
    }
    if (!res.ok) {
      const err = await errorFrom(res);
      if (err.status === 401) this.onUnauthorized(err);
      throw err;
    }
    return res;
  }

  private async json<T>(method: string, path: string, body?: Body, signal?: AbortSignal): Promise<T> {
    const res = await this.send(method, path, body, signal);
    return (await res.json()) as T;
  }

  models(): Promise<ModelsResponse> {
    return this.json('GET', '/v1/models');
  }

  /** /readyz: 'ready', 'not ready' (loading, warming up, or the store unreachable) or 'unreachable'. */
  async ready(): Promise<'ready' | 'not ready' | 'unreachable'> {
    const res = await fetch(this.base + '/readyz').catch(() => undefined);
    if (!res) return 'unreachable';
    return res.ok ? 'ready' : 'not ready';
  }

  detect(form: FormData, signal?: AbortSignal): Promise<DetectResponse> {
    return this.json('POST', '/v1/detect', { form }, signal);
  }

  batch(form: FormData, signal?: AbortSignal): Promise<BatchResponse> {
    return this.json('POST', '/v1/detect/batch', { form }, signal);
  }

  async categories(): Promise<Category[]> {
    return (await this.json<{ categories: Category[] }>('GET', '/v1/categories')).categories;
  }

  category(id: string): Promise<Category> {
    return this.json('GET', `/v1/categories/${enc(id)}`);
  }

  putCategory(id: string, input: CategoryInput): Promise<Category> {
    return this.json('PUT', `/v1/categories/${enc(id)}`, { json: input });
  }

  async deleteCategory(id: string): Promise<void> {
    await this.send('DELETE', `/v1/categories/${enc(id)}`);
  }

  async references(id: string): Promise<Reference[]> {
    return (await this.json<{ references: Reference[] }>('GET', `/v1/categories/${enc(id)}/references`)).references;
  }

  addReferences(id: string, files: File[]): Promise<{ added: Reference[]; duplicates?: Array<{ index: number; filename?: string }>; references: { count: number; limit: number } }> {
    const form = new FormData();
    for (const f of files) form.append('image', f, f.name);
    return this.json('POST', `/v1/categories/${enc(id)}/references`, { form });
  }

  async deleteReference(id: string, refId: string): Promise<void> {
    await this.send('DELETE', `/v1/categories/${enc(id)}/references/${enc(refId)}`);
  }

  /** Held-out normal images, or leave-one-out over the stored references when none are given. */
  calibrate(id: string, images: File[] = []): Promise<Calibration> {
    const path = `/v1/categories/${enc(id)}/calibrate`;
    if (!images.length) return this.json('POST', path, { json: { source: 'references' } });
    const form = new FormData();
    for (const f of images) form.append('image', f, f.name);
    return this.json('POST', path, { form });
  }

  async detections(query: { category?: string; verdict?: 'anomalous' | 'normal'; limit?: number }): Promise<DetectionRecord[]> {
    const params = new URLSearchParams();
    if (query.category) params.set('category', query.category);
    if (query.verdict) params.set('verdict', query.verdict);
    params.set('limit', String(query.limit ?? 50));
    return (await this.json<{ detections: DetectionRecord[] }>('GET', `/v1/detections?${params}`)).detections;
  }

  async detectionImage(id: string): Promise<Blob> {
    return (await this.send('GET', `/v1/detections/${enc(id)}/image`, undefined, undefined, 'image/*')).blob();
  }

  feedback(id: string, input: FeedbackInput): Promise<DetectionRecord> {
    return this.json('POST', `/v1/detections/${enc(id)}/feedback`, { json: input });
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') return new ApiError(res.status, body.error, typeof body.message === 'string' ? body.message : body.error);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, res.statusText || 'error', text.slice(0, 300) || `HTTP ${res.status}`);
}

/** What the server offers: `capabilities` from /v1/models (top level or the model's); absent = detect only. */
export function capabilitiesOf(models: ModelsResponse): Set<Capability> {
  const list = models.capabilities ?? models.models[0]?.capabilities ?? ['detect'];
  return new Set(list as Capability[]);
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
