// The one store suite both backends run: sqlite-store.test.ts and postgres-store.test.ts call
// storeSuite with their harness. The cases live in cases/, grouped by entity.
import { afterAll, afterEach, describe } from 'vitest';
import { catalogCases } from './cases/catalog.ts';
import { detectionCases } from './cases/detections.ts';
import { lifecycleCases } from './cases/lifecycle.ts';
import { outboxCases } from './cases/outbox.ts';
import { OpenedStores, type StoreHarness } from './harness.ts';
import type { SuiteContext } from './harness.ts';

export function storeSuite(harness: StoreHarness): void {
  const opened = new OpenedStores();
  const ctx: SuiteContext = {
    harness,
    async fresh(options) {
      const location = await harness.newLocation();
      return { location, store: opened.track(await location.open(options)) };
    },
    async openAt(location, options) {
      return opened.track(await location.open(options));
    },
  };
  afterEach(() => opened.closeAll());
  afterAll(() => harness.cleanup());

  describe(`${harness.backend} store`, () => {
    catalogCases(ctx);
    detectionCases(ctx);
    outboxCases(ctx);
    lifecycleCases(ctx);
  });
}
