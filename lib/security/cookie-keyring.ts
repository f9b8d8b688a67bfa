import { createHash, createSecretKey, scrypt, scryptSync, type KeyObject } from 'node:crypto';

/**
 * The cookie KDF: scrypt (RFC 7914) with the interactive-login parameters of the scrypt paper
 * (N = 2^14, r = 8, p = 1: 16 MiB and tens of milliseconds per derivation). A cookie enters
 * the link protocol only through this function, so every offline guess at a cookie costs one
 * derivation. The salt is fixed (both ends must derive the same key without a round trip),
 * so a guess list can be derived once for every cluster: only a random cookie is safe.
 */
export const COOKIE_KDF = Object.freeze({
  /** CPU/memory cost: 2^14 blocks of 128 · r bytes = 16 MiB per derivation. */
  N: 16_384,
  /** Block size factor. */
  r: 8,
  /** Parallelism. */
  p: 1,
  /** Bytes of the derived key. */
  keyBytes: 32,
  /** Fixed salt (UTF-8): domain separation from other uses of the same secret. */
  salt: 'nestjs-cluster cookie key v1',
});

/** Above scrypt's need (128 · N · r = 16 MiB) and node's 32 MiB default limit. */
const SCRYPT_MAXMEM = 64 * 1024 * 1024;
/** Distinct cookies remembered per process (a test run creates many; production one or two). */
const MEMO_LIMIT = 64;
/** Derived keys by SHA-256 of the cookie, so the memo never holds a cookie itself. */
const memo = new Map<string, KeyObject>();
/** Derivations running on the thread pool, by the same id: one scrypt per cookie at a time. */
const inFlight = new Map<string, Promise<KeyObject>>();

/** The memo's key for a cookie: its SHA-256, so the memo never holds a cookie itself. */
function memoId(cookie: string): string {
  return createHash('sha256').update(cookie, 'utf8').digest('base64');
}

function remember(id: string, key: KeyObject): KeyObject {
  if (memo.size >= MEMO_LIMIT) memo.delete(memo.keys().next().value as string);
  memo.set(id, key);
  return key;
}

/**
 * The key a cookie stands for in the link protocol: `scrypt(cookie, COOKIE_KDF.salt)`, as a
 * secret `KeyObject` (it never prints its bytes). Synchronous and slow on purpose; memoised
 * per process by cookie, so a process pays once per cookie however many nodes it runs. Call
 * it at start-up, not per connection.
 */
export function deriveCookieKey(cookie: string): KeyObject {
  const id = memoId(cookie);
  const known = memo.get(id);
  if (known) return known;
  const { N, r, p, keyBytes, salt } = COOKIE_KDF;
  return remember(
    id,
    createSecretKey(
      scryptSync(Buffer.from(cookie, 'utf8'), salt, keyBytes, { N, r, p, maxmem: SCRYPT_MAXMEM }),
    ),
  );
}

/**
 * `deriveCookieKey` off the event loop (libuv's thread pool), sharing its memo: a node that
 * derives this way starts serving at once, and only its first handshakes wait for the key.
 */
export function deriveCookieKeyAsync(cookie: string): Promise<KeyObject> {
  const id = memoId(cookie);
  const known = memo.get(id);
  if (known) return Promise.resolve(known);
  const running = inFlight.get(id);
  if (running) return running;
  const { N, r, p, keyBytes, salt } = COOKIE_KDF;
  const derivation = new Promise<KeyObject>((resolve, reject) =>
    scrypt(
      Buffer.from(cookie, 'utf8'),
      salt,
      keyBytes,
      { N, r, p, maxmem: SCRYPT_MAXMEM },
      (error, derived) => {
        inFlight.delete(id);
        if (error) reject(error);
        else resolve(memo.get(id) ?? remember(id, createSecretKey(derived)));
      },
    ),
  );
  inFlight.set(id, derivation);
  return derivation;
}

/**
 * Starts deriving the keys of `secrets` on the thread pool and returns at once: called as
 * soon as a cookie is known (`ClusterModule.forRoot`, the resolved options, a gossip
 * strategy's constructor), so scrypt runs while the rest of the app initialises and the node
 * can link as soon as it starts instead of a derivation later. Empty and non-string entries
 * are skipped; a failure here is left to the derivation that awaits the key.
 */
export function prewarmCookieKeys(secrets: Iterable<unknown>): void {
  for (const secret of secrets) {
    // deriveCookieKeyAsync returns at once for a key derived or being derived.
    if (typeof secret === 'string' && secret !== '')
      deriveCookieKeyAsync(secret).catch(() => undefined);
  }
}

/** True when `deriveCookieKey(cookie)` would return at once (derived before in this process). */
export function isCookieKeyDerived(cookie: string): boolean {
  return memo.has(memoId(cookie));
}

/**
 * Keys of one secret during a rotation: the `current` one, which a node uses for everything
 * it starts (dialling a link, sealing gossip), and the `previous` ones, which it still
 * accepts from others (answering a dialer that proved one, reading gossip sealed with one).
 *
 * Immutable. Generic so each consumer derives its own key type from the same list:
 * `new Keyring(secret, previousSecrets).map(deriveGossipKey)`.
 */
export class Keyring<K> {
  /** Retired keys still accepted, in the configured order; never the current one. */
  readonly previous: readonly K[];

  constructor(
    /** The key a node initiates with. */
    readonly current: K,
    previous: readonly K[] = [],
  ) {
    this.previous = Object.freeze(previous.filter((key) => key !== current));
  }

  /** Every accepted key, the current one first: the order to try when reading. */
  get all(): readonly K[] {
    return [this.current, ...this.previous];
  }

  /** The same ring with every key passed through `derive` (current stays current). */
  map<U>(derive: (key: K) => U): Keyring<U> {
    return new Keyring(derive(this.current), this.previous.map(derive));
  }
}

/** The link handshake's keyring: `deriveCookieKey` of the current and previous cookies. */
export type CookieKeyring = Keyring<KeyObject>;

/**
 * The keyring of `NODE_COOKIE` (`current`) and `NODE_COOKIE_PREVIOUS` (`previous`), each
 * cookie derived once (see `deriveCookieKey`). A previous cookie equal to the current one
 * is dropped.
 */
export function cookieKeyring(current: string, previous: readonly string[] = []): CookieKeyring {
  return new Keyring(current, [...new Set(previous)]).map(deriveCookieKey);
}

/** `cookieKeyring` with every cookie derived off the event loop (`deriveCookieKeyAsync`). */
export async function cookieKeyringAsync(
  current: string,
  previous: readonly string[] = [],
): Promise<CookieKeyring> {
  const cookies = new Keyring(current, [...new Set(previous)]);
  const [first, ...rest] = await Promise.all(cookies.all.map(deriveCookieKeyAsync));
  return new Keyring(first, rest);
}
