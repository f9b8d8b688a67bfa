// Seal + open cost of one link record with each AEAD the record layer could use, on this
// machine: `node bench/record-cipher.mjs`. Records of 1 KiB (a few small messages), 16 KiB and
// 64 KiB (RECORD_TARGET_BYTES, a full batch). Prints one JSON line per cipher and size.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const key = randomBytes(32);
const aad = Buffer.alloc(4);
const budgetBytes = Number(process.env.RECORD_CIPHER_BYTES ?? 256 * 1024 * 1024);

function run(alg, size) {
  const plain = randomBytes(size);
  const nonce = Buffer.alloc(12);
  const n = Math.max(200, Math.round(budgetBytes / size));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    nonce.writeUInt32BE(i, 8);
    const c = createCipheriv(alg, key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const body = c.update(plain);
    c.final();
    const tag = c.getAuthTag();
    const d = createDecipheriv(alg, key, nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(tag);
    d.update(body);
    d.final();
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return { alg, size, records: n, usPerRecord: ns / n / 1000, mbPerSec: (size * n) / (ns / 1e3) };
}

for (const size of [1024, 16 * 1024, 64 * 1024]) {
  // Alternate the two ciphers, 3 rounds each, and keep each one's best round.
  const best = {};
  for (let round = 0; round < 3; round++) {
    for (const alg of ['aes-256-gcm', 'chacha20-poly1305']) {
      const r = run(alg, size);
      if (!best[alg] || r.usPerRecord < best[alg].usPerRecord) best[alg] = r;
    }
  }
  for (const r of Object.values(best))
    console.log(
      JSON.stringify({
        ...r,
        usPerRecord: +r.usPerRecord.toFixed(2),
        mbPerSec: +r.mbPerSec.toFixed(0),
      }),
    );
}
