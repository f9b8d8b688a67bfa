// Cost of the cookie KDF and of one link handshake: scrypt of a fresh cookie (what start-up
// pays once per cookie, and what every offline guess at a cookie costs), the HMAC proof a
// guess costs without the KDF (protocol version 1 keyed the HMAC with the cookie itself), and
// a full handshake on loopback between two transports (the KDF memoised, as in a running node).
//
//   npm run build && bash scripts/in-netns.sh node bench/cookie-kdf.mjs [--runs N] [--links N]
import { createHmac, randomBytes, scryptSync } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, links: { type: 'string', default: '200' } },
});
const runs = Number(values.runs);
const links = Number(values.links);
if (process.env.CLUSTER_TEST_NETNS !== '1' && process.env.BENCH_ALLOW_HOST !== '1') {
  console.error(
    'run inside the private network namespace: bash scripts/in-netns.sh node bench/cookie-kdf.mjs',
  );
  process.exit(2);
}
const { Logger } = await import('@nestjs/common');
Logger.overrideLogger(false);
const { COOKIE_KDF, deriveCookieKey } = await import('../build/esm/security/cookie-keyring.js');
const { Transport } = await import('../build/esm/transport/transport.js');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;

// 1. The KDF, fresh cookies (nothing memoised).
const kdf = [];
for (let i = 0; i < runs; i++) {
  const cookie = randomBytes(24).toString('base64url');
  const t = process.hrtime.bigint();
  deriveCookieKey(cookie);
  kdf.push(ms(t));
}
// The same parameters straight from node:crypto, as an attacker's guess loop would run them.
const guess = [];
for (let i = 0; i < runs; i++) {
  const t = process.hrtime.bigint();
  scryptSync(`guess-${i}`, COOKIE_KDF.salt, COOKIE_KDF.keyBytes, {
    N: COOKIE_KDF.N,
    r: COOKIE_KDF.r,
    p: COOKIE_KDF.p,
    maxmem: 64 * 1024 * 1024,
  });
  guess.push(ms(t));
}
// 2. A guess without the KDF: one HMAC-SHA256 over a proof-sized input.
const input = randomBytes(400);
const hmacRounds = 20_000;
let t = process.hrtime.bigint();
for (let i = 0; i < hmacRounds; i++) createHmac('sha256', `guess-${i}`).update(input).digest();
const hmacUs = (ms(t) * 1000) / hmacRounds;

// 3. Handshakes on loopback: `links` sequential dials, each link closed after it is up.
const identity = (name, port) => () => ({
  name,
  incarnation: `${name}-1`,
  startedAt: 1,
  endpoint: `127.0.0.1:${port}`,
});
const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };
const cookie = randomBytes(24).toString('base64url');
const make = (name) =>
  new Transport({
    identity: identity(name, 0),
    cookie,
    bindAddress: '127.0.0.1',
    port: 0,
    acceptedTypes: new Set([32]),
    logger: quiet,
  });
const a = make('a@127.0.0.1');
const b = make('b@127.0.0.1');
await a.listen();
const { port } = await b.listen();
const handshake = [];
for (let i = 0; i < links; i++) {
  t = process.hrtime.bigint();
  const link = await a.dial('127.0.0.1', port);
  handshake.push(ms(t));
  link.close('bench');
}
await a.close();
await b.close();

const out = {
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
  },
  node: process.version,
  kdf: {
    params: { N: COOKIE_KDF.N, r: COOKIE_KDF.r, p: COOKIE_KDF.p },
    runs,
    medianMs: +median(kdf).toFixed(1),
    minMs: +Math.min(...kdf).toFixed(1),
    maxMs: +Math.max(...kdf).toFixed(1),
  },
  guessWithKdf: { medianMs: +median(guess).toFixed(1), minMs: +Math.min(...guess).toFixed(1) },
  guessWithoutKdf: { hmacUs: +hmacUs.toFixed(2) },
  handshake: {
    links,
    medianMs: +median(handshake).toFixed(2),
    minMs: +Math.min(...handshake).toFixed(2),
    maxMs: +Math.max(...handshake).toFixed(2),
  },
};
console.log(JSON.stringify(out, null, 2));
