// The training loss of one image, as AnomalyCLIP and APRIL-GAN train their maps:
//   focal(P, M) + dice(P, M) + dice(1 − P, 1 − M)   on the upsampled anomaly map P vs mask M,
//   + BCE(p_image, label)                            on the image probability,
// each term with a weight. Focal: γ = 2, no α, mean over pixels. Dice: AnomalyCLIP's binary
// dice with smoothing 1, per image; the second dice term makes good images (empty masks) push
// their map toward 0 as well. Probabilities are clamped to [ε, 1 − ε] before logarithms (zero
// gradient outside, as torch.clamp gives). Gradients are returned with respect to P and p_image.

export interface LossSettings {
  focalGamma: number;
  focal: number;
  dice: number;
  image: number;
}

export const defaultLossSettings: LossSettings = { focalGamma: 2, focal: 1, dice: 1, image: 1 };

/** Per-image loss terms, already weighted; total is their sum. */
export interface LossTerms {
  total: number;
  focal: number;
  dice: number;
  image: number;
}

const EPS = 1e-6;
const DICE_SMOOTH = 1;

export function zeroTerms(): LossTerms {
  return { total: 0, focal: 0, dice: 0, image: 0 };
}

export function addTerms(into: LossTerms, t: LossTerms, scale = 1): void {
  into.total += t.total * scale;
  into.focal += t.focal * scale;
  into.dice += t.dice * scale;
  into.image += t.image * scale;
}

/**
 * Loss of one image. With `dMap` ([P.length], overwritten) the gradient dL/dP is written there;
 * the returned dPImage is dL/dp_image.
 */
export function imageLoss(
  map: ArrayLike<number>,
  mask: Uint8Array,
  pImage: number,
  label: 0 | 1,
  settings: LossSettings = defaultLossSettings,
  dMap?: Float64Array,
): { terms: LossTerms; dPImage: number } {
  const m = map.length;
  if (mask.length !== m) throw new RangeError(`imageLoss: mask has ${mask.length} values, map ${m}`);
  const g = settings.focalGamma;

  let focal = 0;
  let inter = 0; // Σ p·y
  let sumP = 0;
  let sumY = 0;
  for (let i = 0; i < m; i++) {
    const p = map[i];
    const y = mask[i] ? 1 : 0;
    const pc = Math.min(1 - EPS, Math.max(EPS, p));
    // Focal: -(1-p)^γ log p for defects, -p^γ log(1-p) for normal pixels.
    focal += y ? -((1 - pc) ** g) * Math.log(pc) : -(pc ** g) * Math.log(1 - pc);
    inter += p * y;
    sumP += p;
    sumY += y;
  }
  focal /= m;
  // dice(P, M) and dice(1 − P, 1 − M); Σ(1−p)(1−y) = m − sumP − sumY + inter.
  const numA = 2 * inter + DICE_SMOOTH;
  const denA = sumP + sumY + DICE_SMOOTH;
  const interB = m - sumP - sumY + inter;
  const numB = 2 * interB + DICE_SMOOTH;
  const denB = 2 * m - sumP - sumY + DICE_SMOOTH;
  const dice = 1 - numA / denA + (1 - numB / denB);

  const pc = Math.min(1 - EPS, Math.max(EPS, pImage));
  const bce = label ? -Math.log(pc) : -Math.log(1 - pc);

  const terms: LossTerms = { focal: settings.focal * focal, dice: settings.dice * dice, image: settings.image * bce, total: 0 };
  terms.total = terms.focal + terms.dice + terms.image;

  let dPImage = 0;
  if (pImage > EPS && pImage < 1 - EPS) dPImage = settings.image * (label ? -1 / pImage : 1 / (1 - pImage));

  if (dMap) {
    if (dMap.length !== m) throw new RangeError('imageLoss: dMap has the wrong length');
    // d(numA/denA)/dp = (2y·denA − numA) / denA²;  d(numB/denB)/dp = (−2(1−y)·denB + numB) / denB².
    const wf = settings.focal / m;
    const wd = settings.dice;
    for (let i = 0; i < m; i++) {
      const p = map[i];
      const y = mask[i] ? 1 : 0;
      let d = 0;
      if (p > EPS && p < 1 - EPS) {
        d = y
          ? g * (1 - p) ** (g - 1) * Math.log(p) - (1 - p) ** g / p
          : -g * p ** (g - 1) * Math.log(1 - p) + p ** g / (1 - p);
        d *= wf;
      }
      const dA = (2 * y * denA - numA) / (denA * denA);
      const dB = (-2 * (1 - y) * denB + numB) / (denB * denB);
      dMap[i] = d - wd * (dA + dB);
    }
  }
  return { terms, dPImage };
}
