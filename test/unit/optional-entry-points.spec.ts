import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The main entry must not load the optional peers of `nestjs-cluster/socket.io`,
 * `nestjs-cluster/microservices` and `nestjs-cluster/testing`: walks every relative import
 * reachable from lib/index.ts.
 */
const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '../../lib');
const OPTIONAL = [
  'socket.io',
  'socket.io-adapter',
  '@nestjs/websockets',
  '@nestjs/platform-socket.io',
  '@nestjs/microservices',
  '@nestjs/testing',
];

function reachable(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(
      /^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/gm,
    )) {
      const spec = match[1] ?? match[2];
      if (spec.startsWith('.')) visit(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('entry points', () => {
  it('lib/index.ts reaches none of the optional socket.io / microservices / testing packages', () => {
    const { files, packages } = reachable(join(LIB, 'index.ts'));
    expect(files.size).toBeGreaterThan(20);
    expect(
      [...packages].filter((p) => OPTIONAL.some((o) => p === o || p.startsWith(`${o}/`))),
    ).toEqual([]);
  });

  it('the optional entries do use them (the walk sees imports)', () => {
    expect([...reachable(join(LIB, 'socket-io/index.ts')).packages]).toEqual(
      expect.arrayContaining(['socket.io-adapter', '@nestjs/platform-socket.io']),
    );
    expect([...reachable(join(LIB, 'microservices/index.ts')).packages]).toContain(
      '@nestjs/microservices',
    );
    expect([...reachable(join(LIB, 'testing/index.ts')).packages]).toContain('@nestjs/testing');
  });

  it('every entry of the exports map is declared for import and require, with types', () => {
    const pkg = JSON.parse(readFileSync(join(LIB, '../package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      typesVersions: Record<string, Record<string, string[]>>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
    };
    const testing = pkg.exports['./testing'];
    expect(testing).toEqual({
      import: { types: './dist/testing/index.d.ts', default: './dist/testing/index.js' },
      require: { types: './dist/cjs/testing/index.d.ts', default: './dist/cjs/testing/index.js' },
      default: './dist/testing/index.js',
    });
    expect(pkg.typesVersions['*'].testing).toEqual(['./dist/cjs/testing/index.d.ts']);
    expect(pkg.peerDependenciesMeta['@nestjs/testing']).toEqual({ optional: true });
  });
});
