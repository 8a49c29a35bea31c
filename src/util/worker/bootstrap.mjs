// The one worker entry point. Worker threads do not inherit a TypeScript loader in every
// environment (node with tsx, vitest), so each worker registers tsx itself, then serves the
// module its workerData names (serve.ts).
import { register } from 'tsx/esm/api';

register();
const { serve } = await import('./serve.ts');
await serve();
