// ICC profiles: by default the stored values are decoded as they are (PIL's convert('RGB'),
// what CLIP and anomalib use); iccConvert (ICC_CONVERT=1) converts to sRGB.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeImage } from '../../src/imaging/decode.ts';

/** The JPEG without its APP2 ICC_PROFILE segments: same coded pixels, no profile. */
function stripIcc(jpeg: Buffer): Buffer {
  const parts = [jpeg.subarray(0, 2)];
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff && jpeg[at + 1] !== 0xda) {
    const len = jpeg.readUInt16BE(at + 2);
    const isIcc = jpeg[at + 1] === 0xe2 && jpeg.toString('latin1', at + 4, at + 16) === 'ICC_PROFILE\0';
    if (!isIcc) parts.push(jpeg.subarray(at, at + 2 + len));
    at += 2 + len;
  }
  parts.push(jpeg.subarray(at));
  return Buffer.concat(parts);
}

describe('embedded ICC profile', async () => {
  const w = 24;
  const h = 16;
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + (i >> 5) * 11) % 256;
  const p3 = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).withIccProfile('p3').jpeg({ quality: 95 }).toBuffer();
  const bare = stripIcc(p3);

  it('the fixture carries a Display-P3 profile and its stripped copy none', async () => {
    expect((await sharp(p3).metadata()).icc).toBeDefined();
    expect((await sharp(bare).metadata()).icc).toBeUndefined();
  });

  it('decodes the stored values by default: equal to the profile-less decode', async () => {
    const withProfile = await decodeImage(p3);
    const without = await decodeImage(bare);
    expect(withProfile.rgb.equals(without.rgb)).toBe(true);
  });

  it('converts to sRGB with iccConvert, which changes the values', async () => {
    const converted = await decodeImage(p3, { iccConvert: true });
    const stored = await decodeImage(p3);
    expect(converted.rgb.equals(stored.rgb)).toBe(false);
    let maxDiff = 0;
    for (let i = 0; i < stored.rgb.length; i++) maxDiff = Math.max(maxDiff, Math.abs(converted.rgb[i] - stored.rgb[i]));
    expect(maxDiff).toBeGreaterThan(10); // P3 → sRGB moves saturated colours a lot
    // A profile-less image is the same either way.
    expect((await decodeImage(bare, { iccConvert: true })).rgb.equals((await decodeImage(bare)).rgb)).toBe(true);
  });
});

describe('ICC_CONVERT setting', () => {
  it('is off by default and on with ICC_CONVERT=1', async () => {
    const { loadSettings } = await import('../../src/settings.ts');
    expect(loadSettings({}, { model: 'x' }).iccConvert).toBe(false);
    expect(loadSettings({ ICC_CONVERT: '1' }, { model: 'x' }).iccConvert).toBe(true);
  });
});
