// Adam (Kingma & Ba, 2015) on a flat float64 parameter vector, with bias correction and an
// optional per-parameter learning-rate scale (the trainer gives text coordinates lr/√D, so a
// step moves each text vector by about lr whatever the embedding size).

export interface AdamSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

export const defaultAdamSettings: AdamSettings = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;
  readonly settings: AdamSettings;

  constructor(
    readonly size: number,
    settings: Partial<AdamSettings> = {},
    private readonly lrScale?: Float64Array,
  ) {
    this.settings = { ...defaultAdamSettings, ...settings };
    if (!(this.settings.lr >= 0)) throw new RangeError(`Adam: lr must be >= 0, got ${this.settings.lr}`);
    if (lrScale && lrScale.length !== size) throw new RangeError('Adam: lrScale has the wrong length');
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  get steps(): number {
    return this.t;
  }

  /** θ ← θ − lr · m̂ / (√v̂ + ε), in place. */
  step(theta: Float64Array, grad: Float64Array): void {
    if (theta.length !== this.size || grad.length !== this.size) throw new RangeError('Adam: size mismatch');
    const { lr, beta1, beta2, eps } = this.settings;
    this.t++;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    for (let i = 0; i < this.size; i++) {
      const g = grad[i];
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * g;
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * g * g;
      const step = (lr * (this.lrScale ? this.lrScale[i] : 1) * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + eps);
      theta[i] -= step;
    }
  }
}
