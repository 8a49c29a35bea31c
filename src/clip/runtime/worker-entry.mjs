// Worker bootstrap. Worker threads do not inherit a TypeScript loader in every environment
// (node with tsx, vitest), so each worker registers tsx itself and then loads the real code.
import { register } from 'tsx/esm/api';

register();
await import('./inference-worker.ts');
