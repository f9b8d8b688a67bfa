// Baseline: a Node.js process running the worker runtime and nothing else.
import { runWorker } from './common.mjs';

await runWorker({ async start() {}, async stop() {} });
