// The webhook event's overlay for a map=png answer (event.ts eventOverlay): the heatmap blended
// half and half over the re-decoded image, exactly blendOverlay's bytes, computed a slice at a
// time so the HTTP thread keeps turning while a large image is blended.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { blendInSlices, eventOverlay } from '../../src/webhooks/event.ts';
import { blendOverlay } from '../../src/imaging/heatmap.ts';
import type { DetectResponse } from '../../src/detection/types.ts';

describe('eventOverlay over a heatmap PNG', () => {
  it('is blendOverlay of the heatmap and the image, and lets the event loop turn while it blends', async () => {
    const [width, height] = [1500, 1000]; // 4.5 MB of RGB: several slices
    const rgb = Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 31 + (i >> 11)) & 0xff));
    const heat = Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
    const image = await sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
    const map = await sharp(heat, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
    const response = { map: { type: 'png', width, height, encoding: 'base64', mime: 'image/png', data: map.toString('base64') } } as unknown as DetectResponse;

    const overlay = await eventOverlay(response, image);
    expect(overlay).toMatchObject({ mime: 'image/png', encoding: 'base64', width, height });
    const drawn = await sharp(Buffer.from(overlay!.data, 'base64')).raw().toBuffer();
    expect(drawn.equals(Buffer.from(blendOverlay(heat, rgb, 0.5)))).toBe(true);

    // The blend alone (no other asynchronous work): the loop turns between its five 1 MiB slices.
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const blended = await blendInSlices(heat, rgb);
    ticking = false;
    expect(blended.equals(drawn)).toBe(true);
    expect(turns).toBeGreaterThanOrEqual(4);
  });
});
