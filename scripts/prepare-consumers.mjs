// Prepares the apps of test/consumer/consumer.spec.ts, outside the test network namespace
// (which has no registry access): packs this package with `npm pack` and installs the tarball
// into three small apps, each with its own Nest and TypeScript:
//
//   cjs-nest12  "type": "commonjs", tsc `module: commonjs`, Nest 12, TypeScript 6
//   esm-nest12  "type": "module",   tsc `module: nodenext`, Nest 12, TypeScript 6
//   cjs-nest11  "type": "commonjs", tsc `module: commonjs`, Nest 11, TypeScript 5
//
// None installs the optional AWS SDK packages. The apps live outside this repository (in the
// system's temporary folder, or CLUSTER_CONSUMERS_DIR), so that Node's module lookup cannot
// climb into this repository's node_modules. Installs are cached there: an app is installed
// again only when its package.json changes; a new tarball replaces just nestjs-cluster.
// node_modules/.cache/nestjs-cluster-consumers.json tells the test where they are.
// Run after `npm run build`.
//
//   node scripts/prepare-consumers.mjs
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CONSUMERS_DIR =
  process.env.CLUSTER_CONSUMERS_DIR ??
  join(
    tmpdir(),
    `nestjs-cluster-consumers-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`,
  );
const POINTER = join(ROOT, 'node_modules/.cache/nestjs-cluster-consumers.json');
const TARBALL = join(CONSUMERS_DIR, 'nestjs-cluster.tgz');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const nest12 = {
  '@nestjs/common': root.devDependencies['@nestjs/common'],
  '@nestjs/config': root.devDependencies['@nestjs/config'],
  '@nestjs/core': root.devDependencies['@nestjs/core'],
  '@nestjs/terminus': root.devDependencies['@nestjs/terminus'],
  '@nestjs/testing': root.devDependencies['@nestjs/testing'],
  typescript: root.devDependencies.typescript,
};
const nest11 = {
  '@nestjs/common': '^11.1.0',
  '@nestjs/config': '^4.0.2',
  '@nestjs/core': '^11.1.0',
  '@nestjs/terminus': '^11.0.0',
  '@nestjs/testing': '^11.1.0',
  typescript: '~5.9.3',
};
const common = {
  '@types/node': root.devDependencies['@types/node'],
  'reflect-metadata': root.devDependencies['reflect-metadata'],
  rxjs: root.devDependencies.rxjs,
};
const cjsTsconfig = { module: 'commonjs', target: 'ES2022' };
const esmTsconfig = { module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022' };

const APPS = [
  { name: 'cjs-nest12', type: 'commonjs', deps: { ...nest12, ...common }, ts: cjsTsconfig },
  { name: 'esm-nest12', type: 'module', deps: { ...nest12, ...common }, ts: esmTsconfig },
  { name: 'cjs-nest11', type: 'commonjs', deps: { ...nest11, ...common }, ts: cjsTsconfig },
];

function run(cmd, args, cwd) {
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
}

function pack() {
  mkdirSync(CONSUMERS_DIR, { recursive: true });
  // The build is done (npm test builds first): --ignore-scripts skips `prepare`.
  const out = execFileSync(
    npm,
    ['pack', '--ignore-scripts', '--json', '--pack-destination', CONSUMERS_DIR],
    {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const [{ filename }] = JSON.parse(out);
  renameSync(join(CONSUMERS_DIR, filename), TARBALL);
  return createHash('sha256').update(readFileSync(TARBALL)).digest('hex');
}

function prepareApp(app, tarballHash) {
  const dir = join(CONSUMERS_DIR, app.name);
  const manifest = {
    name: `consumer-${app.name}`,
    private: true,
    type: app.type,
    dependencies: { ...app.deps, 'nestjs-cluster': 'file:../nestjs-cluster.tgz' },
  };
  const tsconfig = {
    compilerOptions: {
      ...app.ts,
      strict: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      skipLibCheck: true,
      types: ['node'],
      rootDir: 'src',
      outDir: 'dist',
    },
    include: ['src'],
  };
  const manifestText = JSON.stringify(manifest, null, 2) + '\n';
  const manifestHash = createHash('sha256').update(manifestText).digest('hex');
  const stampFile = join(dir, 'node_modules/.consumer-stamp.json');
  const stamp = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, 'utf8')) : {};

  mkdirSync(join(dir, 'src'), { recursive: true });
  copyFileSync(join(ROOT, 'test/consumer/app/main.ts'), join(dir, 'src/main.ts'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2) + '\n');

  if (stamp.manifest === manifestHash && stamp.tarball === tarballHash) {
    console.log(`prepare-consumers: ${app.name} up to date`);
    return;
  }
  if (stamp.manifest !== manifestHash) {
    rmSync(join(dir, 'node_modules'), { recursive: true, force: true });
    rmSync(join(dir, 'package-lock.json'), { force: true });
  } else {
    // Same dependencies, new tarball: reinstall only nestjs-cluster.
    rmSync(join(dir, 'node_modules/nestjs-cluster'), { recursive: true, force: true });
    rmSync(join(dir, 'package-lock.json'), { force: true });
  }
  writeFileSync(join(dir, 'package.json'), manifestText);
  console.log(`prepare-consumers: installing ${app.name}`);
  run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  writeFileSync(stampFile, JSON.stringify({ manifest: manifestHash, tarball: tarballHash }) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!existsSync(join(ROOT, 'dist/cjs/package.json'))) {
    throw new Error('prepare-consumers: run `npm run build` first (dist/cjs is missing)');
  }
  const started = Date.now();
  const hash = pack();
  for (const app of APPS) prepareApp(app, hash);
  mkdirSync(dirname(POINTER), { recursive: true });
  writeFileSync(
    POINTER,
    JSON.stringify(
      {
        dir: CONSUMERS_DIR,
        apps: APPS.map(({ name, type }) => ({ name, type, dir: join(CONSUMERS_DIR, name) })),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(
    `prepare-consumers: ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${CONSUMERS_DIR})`,
  );
}
