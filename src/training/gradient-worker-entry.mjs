// Worker bootstrap (as src/clip/worker-entry.mjs): register tsx, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./gradient-worker.ts');
