import { createHmac, scryptSync } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  COOKIE_KDF,
  cookieKeyring,
  cookieKeyringAsync,
  deriveCookieKey,
  deriveCookieKeyAsync,
  isCookieKeyDerived,
  Keyring,
} from '../../../lib/security/cookie-keyring.js';
import { cookieWeakness } from '../../../lib/security/cookie-strength.js';

const mac = (key: Parameters<typeof createHmac>[1]) =>
  createHmac('sha256', key).update('x').digest('hex');

describe('cookie keyring', () => {
  it('derives scrypt(cookie, salt) with the documented parameters', () => {
    const cookie = 'keyring-spec-cookie-0123456789';
    const expected = scryptSync(Buffer.from(cookie, 'utf8'), 'nestjs-cluster cookie key v1', 32, {
      N: 16_384,
      r: 8,
      p: 1,
      maxmem: 64 * 1024 * 1024,
    });
    expect(COOKIE_KDF).toMatchObject({ N: 16_384, r: 8, p: 1, keyBytes: 32 });
    const key = deriveCookieKey(cookie);
    expect(key.type).toBe('secret');
    expect(key.export().equals(expected)).toBe(true);
    // The same cookie is derived once per process: the same key object comes back.
    expect(deriveCookieKey(cookie)).toBe(key);
    expect(mac(deriveCookieKey(`${cookie}!`))).not.toBe(mac(key));
    // A key object never prints its bytes.
    expect(inspect(key)).not.toContain(expected.toString('hex'));
  });

  it('keeps the current key first and drops a previous cookie equal to the current one', () => {
    const ring = cookieKeyring('current-cookie-abcdefgh', [
      'old-cookie-1-abcdefgh',
      'current-cookie-abcdefgh',
      'old-cookie-1-abcdefgh',
      'old-cookie-2-abcdefgh',
    ]);
    expect(ring.current).toBe(deriveCookieKey('current-cookie-abcdefgh'));
    expect(ring.previous).toEqual([
      deriveCookieKey('old-cookie-1-abcdefgh'),
      deriveCookieKey('old-cookie-2-abcdefgh'),
    ]);
    expect(ring.all.map(mac)).toEqual(
      ['current-cookie-abcdefgh', 'old-cookie-1-abcdefgh', 'old-cookie-2-abcdefgh'].map((c) =>
        mac(deriveCookieKey(c)),
      ),
    );
  });

  it('derives off the event loop the same key as the synchronous KDF, sharing its memo', async () => {
    const cookie = 'keyring-spec-async-cookie-0123456789';
    expect(isCookieKeyDerived(cookie)).toBe(false);
    const pending = deriveCookieKeyAsync(cookie);
    // Not derived on this turn of the event loop: the KDF runs on the thread pool.
    expect(isCookieKeyDerived(cookie)).toBe(false);
    const key = await pending;
    expect(isCookieKeyDerived(cookie)).toBe(true);
    const expected = scryptSync(Buffer.from(cookie, 'utf8'), COOKIE_KDF.salt, 32, {
      N: COOKIE_KDF.N,
      r: COOKIE_KDF.r,
      p: COOKIE_KDF.p,
      maxmem: 64 * 1024 * 1024,
    });
    expect(key.export().equals(expected)).toBe(true);
    expect(deriveCookieKey(cookie)).toBe(key);
    expect(await deriveCookieKeyAsync(cookie)).toBe(key);

    const ring = await cookieKeyringAsync('async-current-abcdefgh', [
      'async-old-abcdefgh',
      'async-current-abcdefgh',
    ]);
    expect(ring.current).toBe(deriveCookieKey('async-current-abcdefgh'));
    expect(ring.previous).toEqual([deriveCookieKey('async-old-abcdefgh')]);
  });

  it('map derives every key of a generic ring, the current one staying current', () => {
    const ring = new Keyring('b', ['a']).map((s) => s.toUpperCase());
    expect(ring.current).toBe('B');
    expect(ring.previous).toEqual(['A']);
    expect(ring.all).toEqual(['B', 'A']);
    expect(Object.isFrozen(ring.previous)).toBe(true);
  });
});

describe('cookie strength', () => {
  it('reports short cookies and known placeholders, whatever their case and separators', () => {
    expect(cookieWeakness('abc')).toBe('short');
    expect(cookieWeakness('0123456789abcde')).toBe('short');
    expect(cookieWeakness('0123456789abcdef')).toBeUndefined();
    expect(cookieWeakness('change-me')).toBe('placeholder');
    expect(cookieWeakness('CHANGE_ME')).toBe('placeholder');
    expect(cookieWeakness('changeme')).toBe('placeholder');
    expect(cookieWeakness('secret')).toBe('placeholder');
    expect(cookieWeakness('password')).toBe('placeholder');
    expect(cookieWeakness('cookie')).toBe('placeholder');
    // Long, but the placeholder of the docs.
    expect(cookieWeakness('change-me-to-a-long-random-secret')).toBe('placeholder');
    expect(cookieWeakness('replace-with-the-output-of-openssl-rand-base64-32')).toBe('placeholder');
    expect(cookieWeakness('q3J8v1m2ZkT9yXc0PpLs4w==')).toBeUndefined();
  });
});
