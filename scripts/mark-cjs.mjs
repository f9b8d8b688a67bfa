// Marks dist/cjs as CommonJS: the package root is "type": "module", so without this file
// Node would load the `require` build (tsc `module: commonjs`, see tsconfig.cjs.json) as ESM.
import { writeFileSync } from 'node:fs';

writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');
