// The category service once the model has loaded: routes are registered at start-up, before
// the detector exists, and answer 503 model_loading until it does.
import { ModelLoadingError, ModelUnavailableError } from '../errors.ts';
import type { CategoryService } from './service.ts';

export class CategoryProvider {
  private service?: CategoryService;
  private failure?: Error;

  constructor(readonly loading: Promise<CategoryService>) {
    loading.then(
      (s) => (this.service = s),
      (err: Error) => (this.failure = err),
    );
  }

  static of(service: CategoryService): CategoryProvider {
    const p = new CategoryProvider(Promise.resolve(service));
    p.service = service;
    return p;
  }

  /** The service; 503 while the model loads. */
  get(): CategoryService {
    if (this.service) return this.service;
    if (this.failure) throw new ModelUnavailableError(`the model failed to load: ${this.failure.message}`);
    throw new ModelLoadingError('the model is still loading; retry shortly');
  }
}
