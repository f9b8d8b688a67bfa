/** Shortest cookie not reported as weak, characters. */
export const MIN_COOKIE_LENGTH = 16;

/**
 * Placeholders found in examples, tutorials and this project's own docs (compared without
 * case, spaces, `-` and `_`): the first words any guess list tries.
 */
const PLACEHOLDERS: ReadonlySet<string> = new Set(
  [
    'change-me',
    'changeme',
    'change-me-to-a-long-random-secret',
    'replace-me',
    'replace-with-the-output-of-openssl-rand-base64-32',
    'secret',
    'my-secret',
    'super-secret',
    'top-secret',
    'shared-secret',
    'cluster-secret',
    'your-secret-here',
    'cookie',
    'node-cookie',
    'erlang-cookie',
    'secret-cookie',
    'cluster-cookie',
    'my-cookie',
    'your-cookie-here',
    'password',
    'passw0rd',
    'letmein',
    'default',
    'example',
    'test',
    'nocookie',
  ].map(normalize),
);

function normalize(value: string): string {
  return value.toLowerCase().replace(/[\s_-]/g, '');
}

/**
 * Why `cookie` is weak — `'short'` (fewer than 16 characters) or `'placeholder'` (a known
 * example value) — or undefined when it is neither. Says nothing about real randomness: a
 * long word list phrase passes; generate cookies with `openssl rand -base64 32`.
 */
export function cookieWeakness(cookie: string): 'short' | 'placeholder' | undefined {
  if (PLACEHOLDERS.has(normalize(cookie))) return 'placeholder';
  if ([...cookie].length < MIN_COOKIE_LENGTH) return 'short';
  return undefined;
}

/** How a weak cookie is described in the start-up warning and the configuration error. */
export function weakCookieText(weakness: 'short' | 'placeholder'): string {
  return weakness === 'short'
    ? `is shorter than ${MIN_COOKIE_LENGTH} characters`
    : 'is a well-known placeholder';
}

/** The advice that ends both the warning and the error. */
export const GENERATE_COOKIE_ADVICE =
  'generate one with `openssl rand -base64 32` and set it on every node';
