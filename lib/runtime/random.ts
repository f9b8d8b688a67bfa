import { randomBytes } from 'node:crypto';

/** The randomness seam of the core: jitter and nonces. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** `n` random bytes. */
  bytes(n: number): Buffer;
}

/** The process's real randomness (`Math.random` for jitter, the CSPRNG for nonces). */
export const systemRandom: Random = Object.freeze({
  next: () => Math.random(),
  bytes: (n: number) => randomBytes(n),
});

/**
 * A deterministic generator (sfc32) for the simulator: the same seed gives the same run.
 * Its bytes are not secret — never use it outside simulation.
 */
export function seededRandom(seed: number): Random {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next32 = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 16; i++) next32();
  return {
    next: () => next32() / 4294967296,
    bytes: (n: number) => {
      const out = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) out[i] = next32() & 0xff;
      return out;
    },
  };
}
