// Cost of rejecting gossip packets that do not authenticate, per packet, in one process:
// the key-ring format (the key id in the header names a key this node does not hold: dropped
// before any AES work), a forgery that copies a held key id (reaches the GCM tag), a valid
// packet (for scale), and the same codec path through the receiving session (counters and
// the rate-limited warning included). With git and the base commit at hand, the packet
// format before the key ring (one AES-GCM attempt ending in the thrown tag failure) is
// measured side by side in the same run.
//
//   npm run build && node bench/gossip-auth.mjs [--rounds 7] [--packets 50000] [--base <commit>]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    packets: { type: 'string', default: '50000' },
    // The last commit with the format-1 packet (no key id).
    base: { type: 'string', default: '6b083fe' },
  },
});
const ROUNDS = Number(values.rounds);
const PACKETS = Number(values.packets);
const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;

const packetModule = await import(dist('strategies/gossip/gossip-packet.js'));
const { GossipSession } = await import(dist('strategies/gossip/gossip-session.js'));
const { GossipKeyring, deriveGossipKey, sealHeartbeat, openHeartbeat, createGossipNonce } =
  packetModule;

const heartbeat = () => ({
  kind: 'heartbeat',
  sentAt: Date.now(),
  nonce: createGossipNonce(),
  protocolVersion: 1,
  name: 'bench@127.0.0.9',
  incarnation: 'b3c1d6e2-0b9f-4b1e-9a57-1c2d3e4f5a6b',
  startedAt: Date.now(),
  endpoint: '127.0.0.9:45893',
});

/** ns per call of `fn(packets[i % n])`, median of ROUNDS rounds of PACKETS calls. */
function measure(fn, packets) {
  const n = packets.length;
  for (let i = 0; i < Math.min(PACKETS, 5000); i++) fn(packets[i % n]); // warm-up
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PACKETS; i++) fn(packets[i % n]);
    rounds.push(Number(process.hrtime.bigint() - t0) / PACKETS);
  }
  rounds.sort((a, b) => a - b);
  return { medianNs: rounds[(rounds.length - 1) >> 1], minNs: rounds[0], maxNs: rounds.at(-1) };
}

// Key derivation (scrypt + HKDF), once per secret and process: a fresh secret each time.
const deriveMs = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  deriveGossipKey(`bench derivation ${i} ${process.pid}`);
  deriveMs.push(performance.now() - t0);
}
deriveMs.sort((a, b) => a - b);

const ring = new GossipKeyring(deriveGossipKey('bench current secret'), [
  deriveGossipKey('bench retired secret'),
]);
const stranger = deriveGossipKey('another cluster');
const wrongKey = Array.from({ length: 64 }, () => sealHeartbeat(stranger, heartbeat()));
const copiedId = wrongKey.map((p) => {
  const forged = Buffer.from(p);
  forged.writeUInt32BE(ring.current.id, 5);
  return forged;
});
const valid = Array.from({ length: 64 }, () => sealHeartbeat(ring.current, heartbeat()));
for (const [what, list, ok] of [
  ['wrong key', wrongKey, false],
  ['copied id', copiedId, false],
  ['valid', valid, true],
]) {
  if (openHeartbeat(ring, list[0]).ok !== ok) throw new Error(`self-check failed: ${what}`);
}

// The receiving session, with a context that records nothing and a logger that drops lines.
const quiet = { log() {}, warn() {}, error() {}, debug() {} };
const ctx = {
  topology: 'bench',
  self: { name: 'me@127.0.0.1', incarnation: 'x', startedAt: Date.now(), endpoint: '127.0.0.1:1' },
  logger: quiet,
  debug: false,
  connect() {},
  disconnect() {},
  members: () => [],
  reportError() {},
  reportOk() {},
};
const settings = {
  port: 45892,
  ifAddr: '0.0.0.0',
  multicastAddr: '233.252.1.32',
  multicastIf: undefined,
  multicastTtl: 1,
  broadcastOnly: false,
  heartbeatMaxMs: 5000,
  heartbeatMinMs: 1000,
  expireMs: 60000,
  openRetryBaseMs: 1000,
  openRetryMaxMs: 30000,
  now: Date.now,
  socketFactory: () => {
    throw new Error('no sockets in this bench');
  },
};
const session = new GossipSession(ctx, settings, ring);
const rinfo = { address: '198.18.0.7', port: 40000, family: 'IPv4', size: 0 };
const onPacket = (p) => session.onPacket(p, rinfo); // private in TypeScript, callable here

const results = {
  'key ring: wrong key (key id not held), codec': measure((p) => openHeartbeat(ring, p), wrongKey),
  'key ring: wrong key (key id not held), session': measure(onPacket, wrongKey),
  'key ring: forgery with a copied key id (GCM tag fails), codec': measure(
    (p) => openHeartbeat(ring, p),
    copiedId,
  ),
  'key ring: valid packet, codec': measure((p) => openHeartbeat(ring, p), valid),
};
const dropped = session.stats().dropped;
if (dropped.key === 0) throw new Error('self-check failed: the session dropped nothing as key');

// The format before the key ring, from git, compiled on the fly (TypeScript transpile only).
let baseline = { skipped: undefined };
try {
  const source = execFileSync(
    'git',
    ['show', `${values.base}:lib/strategies/gossip/gossip-packet.ts`],
    { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] },
  ).toString();
  const ts = (await import('typescript')).default;
  const js = ts
    .transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    })
    .outputText.replace(
      '../../errors/gossip-packet.error.js',
      dist('errors/gossip-packet.error.js'),
    );
  const dir = mkdtempSync(join(os.tmpdir(), 'gossip-auth-base-'));
  try {
    const file = join(dir, 'gossip-packet.mjs');
    writeFileSync(file, js);
    const old = await import(pathToFileURL(file).href);
    const oldKey = old.deriveGossipKey('bench current secret');
    const oldStranger = old.deriveGossipKey('another cluster');
    const oldWrong = Array.from({ length: 64 }, () => old.sealHeartbeat(oldStranger, heartbeat()));
    const oldValid = Array.from({ length: 64 }, () => old.sealHeartbeat(oldKey, heartbeat()));
    if (old.openHeartbeat(oldKey, oldWrong[0]).reason !== 'auth')
      throw new Error('self-check failed: base wrong key');
    results[`before the key ring (${values.base}): wrong key (thrown GCM failure), codec`] =
      measure((p) => old.openHeartbeat(oldKey, p), oldWrong);
    results[`before the key ring (${values.base}): valid packet, codec`] = measure(
      (p) => old.openHeartbeat(oldKey, p),
      oldValid,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} catch (error) {
  baseline = { skipped: String(error?.message ?? error).split('\n')[0] };
}

const us = (ns) => (ns / 1000).toFixed(2);
const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, load ${os
  .loadavg()
  .map((l) => l.toFixed(1))
  .join(' ')}; Node ${process.version}, OpenSSL ${process.versions.openssl}`;
console.log(`gossip-auth: ${machine}; ${ROUNDS} rounds × ${PACKETS} packets, median (min–max)`);
for (const [name, r] of Object.entries(results)) {
  console.log(`  ${name}: ${us(r.medianNs)} µs (${us(r.minNs)}–${us(r.maxNs)})`);
}
console.log(
  `  key derivation (scrypt N=2^14 + HKDF), once per secret: ${deriveMs[2].toFixed(1)} ms median of 5 (${deriveMs[0].toFixed(1)}–${deriveMs[4].toFixed(1)})`,
);
const fresh = results['key ring: wrong key (key id not held), session'];
const oldWrong = Object.entries(results).find(([n]) => n.includes('thrown GCM failure'))?.[1];
if (oldWrong) {
  console.log(
    `  ratio: the old wrong-key rejection costs ${(oldWrong.medianNs / fresh.medianNs).toFixed(0)}× the new one through the session`,
  );
} else {
  console.log(`  (base commit not measured: ${baseline.skipped})`);
}
console.log(
  `  target ≤ 2 µs per wrong-key packet: ${fresh.medianNs <= 2000 ? 'met' : 'NOT met'} (${us(fresh.medianNs)} µs)`,
);
