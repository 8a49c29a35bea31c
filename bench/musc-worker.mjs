// Worker bootstrap for bench/musc.bench.ts: worker threads do not inherit the tsx loader.
import { register } from 'tsx/esm/api';

register();
await import('./musc-worker.ts');
