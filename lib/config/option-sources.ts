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

/** Records that `path` of `options` was read from `env` with the raw value `raw`. */
export function recordOptionSource(options: object, path: string, env: string, raw: string): void {
  const target = options as WithSources;
  if (!target[SOURCES]) {
    Object.defineProperty(target, SOURCES, { value: new Map(), enumerable: false });
  }
  target[SOURCES]!.set(path, { env, raw });
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
