// Empties dist/ and build/ before a build: the bundler names shared chunks by content hash,
// so chunks of an earlier build would otherwise stay in dist/ and be packed with it.
import { rmSync } from 'node:fs';

for (const dir of ['../dist', '../build']) {
  rmSync(new URL(dir, import.meta.url), { recursive: true, force: true });
}
