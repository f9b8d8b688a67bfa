// Bundles tsc's JavaScript output (build/esm, decorator metadata already emitted) into one
// file per package entry plus shared chunks, once as ES modules (dist/) and once as CommonJS
// (dist/cjs/). Loading ~100 small ES modules one by one is most of what importing the
// library cost at start-up; a handful of files loads in a fraction of that. Shared chunks keep
// one copy of each class across entries (ClusterModule from "nestjs-cluster" and from
// "nestjs-cluster/testing" is the same class). The declarations come from tsc (dist/**/*.d.ts).
import { builtinModules } from 'node:module';
import { readFileSync } from 'node:fs';
import { defineConfig } from 'rolldown';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const packages = Object.keys({
  ...pkg.dependencies,
  ...pkg.peerDependencies,
  ...pkg.optionalDependencies,
});
const builtins = new Set(builtinModules);

/** A package dependency (or a subpath of one) or a Node.js builtin: left to the app's loader. */
function isExternal(id) {
  if (id.startsWith('node:') || builtins.has(id)) return true;
  return packages.some((name) => id === name || id.startsWith(`${name}/`));
}

const input = {
  index: 'build/esm/index.js',
  'health/index': 'build/esm/health/index.js',
  'socket-io/index': 'build/esm/socket-io/index.js',
  'microservices/index': 'build/esm/microservices/index.js',
  'testing/index': 'build/esm/testing/index.js',
};

const shared = { input, external: isExternal, platform: 'node', treeshake: true };

/**
 * Without comments: V8 compiles every byte of an ES module's source when it is loaded, and the
 * TSDoc that tsc keeps in its JavaScript is about half of it. The documentation stays where
 * editors read it (the .d.ts files) and in the shipped sources (lib/).
 */
const outputShared = {
  entryFileNames: '[name].js',
  chunkFileNames: 'chunks/[name]-[hash].js',
  comments: false,
};

export default defineConfig([
  {
    ...shared,
    output: {
      dir: 'dist',
      format: 'esm',
      ...outputShared,
    },
  },
  {
    ...shared,
    output: {
      dir: 'dist/cjs',
      format: 'cjs',
      ...outputShared,
      // As tsc's `module: commonjs` did: a lazily loaded package (the AWS SDK, @nestjs/config)
      // comes through require(), the same instance the app's own require() gets.
      dynamicImportInCjs: false,
    },
  },
]);
