/**
 * Where an option value came from, so validation errors name the environment variable the
 * operator has to change rather than an internal option path.
 */
export interface OptionSource {
  /** Environment variable the value was read from. */
  readonly env: string;
  /** The raw string as set in the environment. */
  readonly raw: string;
}

const SOURCES = Symbol.for('nestjs-cluster.option-sources');

type WithSources = { [SOURCES]?: Map<string, OptionSource> };

function sourcesOf(options: object): Map<string, OptionSource> {
  const target = options as WithSources;
  if (!target[SOURCES]) {
    Object.defineProperty(target, SOURCES, { value: new Map(), enumerable: false });
  }
  return target[SOURCES]!;
}

/** Records that `path` of `options` was read from `env` with the raw value `raw`. */
export function recordOptionSource(options: object, path: string, env: string, raw: string): void {
  sourcesOf(options).set(path, { env, raw });
}

/**
 * Records that `path` of `options` was set in code: its recorded environment source (and
 * those of every path below it, `strategyConfig` → `strategyConfig.hosts`) no longer applies,
 * and a missing value under it is named by option path.
 */
export function recordCodeSource(options: object, path: string): void {
  const sources = sourcesOf(options);
  for (const key of [...sources.keys()]) {
    if (key === path || key.startsWith(`${path}.`)) sources.delete(key);
  }
  sources.set(`$code:${path}`, { env: '', raw: '' });
}

/** True when `path`, or a path above it, was set in code over options read from the environment. */
export function isSetInCode(options: object, path: string): boolean {
  const sources = (options as WithSources)[SOURCES];
  if (!sources) return false;
  const parts = path.split('.');
  for (let i = 1; i <= parts.length; i++) {
    if (sources.has(`$code:${parts.slice(0, i).join('.')}`)) return true;
  }
  return false;
}

/** The recorded source of `path`, if the value came from the environment. */
export function optionSource(options: object, path: string): OptionSource | undefined {
  return (options as WithSources)[SOURCES]?.get(path);
}

/** Copies the recorded sources of `from` onto `to` (a copy of the same options). */
export function copyOptionSources(from: object, to: object): void {
  const sources = (from as WithSources)[SOURCES];
  if (!sources) return;
  for (const [path, source] of sources) recordOptionSource(to, path, source.env, source.raw);
}
