import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GossipOptionsError } from '../../../lib/errors/gossip-options.error.js';
import { GossipPacketError } from '../../../lib/errors/gossip-packet.error.js';
import {
  GOSSIP_MAGIC,
  GOSSIP_MAX_PACKET_BYTES,
  GOSSIP_MIN_PACKET_BYTES,
  GossipKeyring,
  createGossipNonce,
  deriveGossipKey,
  formatKeyId,
  openHeartbeat,
  sealHeartbeat,
  type GossipHeartbeat,
} from '../../../lib/strategies/gossip/gossip-packet.js';
import { heartbeatEndpoint as parseEndpoint } from '../../../lib/strategies/gossip/gossip-session.js';
import { PeerTable } from '../../../lib/strategies/gossip/peer-table.js';
import { ReplayWindow } from '../../../lib/strategies/gossip/replay-window.js';
import { GOSSIP_DEFAULTS, GossipStrategy } from '../../../lib/strategies/gossip.strategy.js';
import { FakeStrategyContext } from './fake-context.js';

const key = deriveGossipKey('correct horse battery staple');
const ring = new GossipKeyring(key);

function heartbeat(overrides: Partial<GossipHeartbeat> = {}): GossipHeartbeat {
  return {
    kind: 'heartbeat',
    sentAt: 1_760_000_000_123,
    nonce: createGossipNonce(),
    protocolVersion: 1,
    name: 'oli@10.0.1.5',
    incarnation: 'b3c1d6e2-0b9f-4b1e-9a57-1c2d3e4f5a6b',
    startedAt: 1_759_999_000_000,
    endpoint: '10.0.1.5:45893',
    ...overrides,
  };
}

describe('gossip packet codec', () => {
  it('round-trips every field', () => {
    const hb = heartbeat({ kind: 'reply', name: 'ünïcode@höst' });
    const opened = openHeartbeat(ring, sealHeartbeat(key, hb));
    expect(opened).toEqual({ ok: true, heartbeat: hb, key });
  });

  it('starts with the magic and version in clear and hides the rest', () => {
    const hb = heartbeat();
    const packet = sealHeartbeat(key, hb);
    expect(packet.subarray(0, 4).equals(GOSSIP_MAGIC)).toBe(true);
    expect(packet[4]).toBe(2);
    expect(packet.readUInt32BE(5)).toBe(key.id);
    expect(packet.includes(Buffer.from(hb.name))).toBe(false);
    expect(packet.includes(Buffer.from(hb.endpoint))).toBe(false);
    expect(packet.includes(hb.nonce)).toBe(false);
    expect(packet.length).toBeGreaterThanOrEqual(GOSSIP_MIN_PACKET_BYTES);
    expect(packet.length).toBeLessThanOrEqual(GOSSIP_MAX_PACKET_BYTES);
  });

  it('uses a fresh IV per packet: the same heartbeat never seals to the same bytes', () => {
    const hb = heartbeat();
    expect(sealHeartbeat(key, hb).equals(sealHeartbeat(key, hb))).toBe(false);
  });

  it('detects a flipped bit anywhere in the packet', () => {
    const packet = sealHeartbeat(key, heartbeat());
    const reasons = new Set<string>();
    for (let i = 0; i < packet.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const tampered = Buffer.from(packet);
        tampered[i] = tampered[i] ^ bit;
        const opened = openHeartbeat(ring, tampered);
        expect(opened.ok, `byte ${i} bit ${bit}`).toBe(false);
        if (!opened.ok) reasons.add(opened.reason);
      }
    }
    // a flipped key-id bit names a key this node does not hold: dropped before decryption
    expect([...reasons].sort()).toEqual(['auth', 'key', 'magic', 'version']);
  });

  it('rejects every truncation and extension', () => {
    const packet = sealHeartbeat(key, heartbeat());
    for (let length = 0; length < packet.length; length++) {
      expect(openHeartbeat(ring, packet.subarray(0, length)).ok, `length ${length}`).toBe(false);
    }
    expect(openHeartbeat(ring, Buffer.concat([packet, Buffer.from([0])])).ok).toBe(false);
  });

  it('drops a packet sealed with another key by its key id, naming the id', () => {
    const other = deriveGossipKey('another cluster');
    expect(other.id).not.toBe(key.id);
    expect(openHeartbeat(ring, sealHeartbeat(other, heartbeat()))).toEqual({
      ok: false,
      reason: 'key',
      keyId: other.id,
    });
  });

  it('drops a forgery that copies a held key id on the GCM tag (auth)', () => {
    const other = deriveGossipKey('another cluster');
    const forged = sealHeartbeat(other, heartbeat());
    forged.writeUInt32BE(key.id, 5);
    expect(openHeartbeat(ring, forged)).toEqual({ ok: false, reason: 'auth', keyId: key.id });
  });

  it('derives the same key from the same secret (nodes agree) and a different one otherwise', () => {
    const packet = sealHeartbeat(deriveGossipKey('s3cret'), heartbeat());
    expect(openHeartbeat(new GossipKeyring(deriveGossipKey('s3cret')), packet).ok).toBe(true);
    expect(openHeartbeat(new GossipKeyring(deriveGossipKey('s3cret ')), packet).ok).toBe(false);
    expect(formatKeyId(deriveGossipKey('s3cret').id)).toMatch(/^[0-9a-f]{8}$/);
  });

  it('reads packets under a retired key of the ring, and says which key opened it', () => {
    const oldKey = deriveGossipKey('old secret');
    const rotating = GossipKeyring.fromSecrets('new secret', ['old secret']);
    expect(rotating.current).toBe(deriveGossipKey('new secret'));
    const hb = heartbeat();
    const opened = openHeartbeat(rotating, sealHeartbeat(oldKey, hb));
    expect(opened).toEqual({ ok: true, heartbeat: hb, key: oldKey });
    expect(opened.ok && rotating.isPrevious(opened.key)).toBe(true);
    const current = openHeartbeat(rotating, sealHeartbeat(rotating.current, hb));
    expect(current.ok && rotating.isPrevious(current.key)).toBe(false);
    // a node that has not rotated yet cannot read the new key, and says so by key id
    expect(openHeartbeat(new GossipKeyring(oldKey), sealHeartbeat(rotating.current, hb))).toEqual({
      ok: false,
      reason: 'key',
      keyId: rotating.current.id,
    });
  });

  it('keeps one key per secret in a ring (the current one repeated in the previous list)', () => {
    const r = GossipKeyring.fromSecrets('a', ['a', 'b', 'b']);
    expect(r.keys.map((k) => k.id)).toEqual([deriveGossipKey('a').id, deriveGossipKey('b').id]);
  });

  it('rejects a format 1 packet (no key id) as an unsupported version', () => {
    const v1 = sealHeartbeat(key, heartbeat());
    v1[4] = 1;
    expect(openHeartbeat(ring, v1)).toEqual({ ok: false, reason: 'version' });
  });

  it('never throws on random input', () => {
    for (let i = 0; i < 2000; i++) {
      const size =
        i % 3 === 0 ? Math.floor(Math.random() * 1200) : GOSSIP_MIN_PACKET_BYTES + (i % 400);
      const junk = randomBytes(size);
      if (i % 2 === 0 && size >= 5) Buffer.concat([GOSSIP_MAGIC, Buffer.from([2])]).copy(junk);
      // every fourth one also carries the ring's key id, so it reaches the GCM tag check
      if (i % 4 === 0 && size >= 9) junk.writeUInt32BE(key.id, 5);
      expect(openHeartbeat(ring, junk).ok).toBe(false);
    }
  });

  it('refuses to seal fields that do not fit', () => {
    expect(() => sealHeartbeat(key, heartbeat({ endpoint: '' }))).toThrow(GossipPacketError);
    expect(() => sealHeartbeat(key, heartbeat({ name: 'x'.repeat(256) }))).toThrow(
      GossipPacketError,
    );
    expect(() => sealHeartbeat(key, heartbeat({ nonce: Buffer.alloc(3) }))).toThrow(
      GossipPacketError,
    );
    expect(() => sealHeartbeat(key, heartbeat({ sentAt: -1 }))).toThrow(GossipPacketError);
    expect(
      sealHeartbeat(
        key,
        heartbeat({
          name: 'x'.repeat(255),
          incarnation: 'i'.repeat(255),
          endpoint: 'e'.repeat(255),
        }),
      ).length,
    ).toBe(GOSSIP_MAX_PACKET_BYTES);
  });
});

describe('ReplayWindow', () => {
  const now = 1_000_000;

  it('accepts a nonce once and rejects it again within the window', () => {
    const w = new ReplayWindow(30_000, 100);
    const nonce = createGossipNonce();
    expect(w.check(nonce, now, now)).toBe('fresh');
    expect(w.check(nonce, now, now + 1000)).toBe('replay');
    expect(w.check(Buffer.from(nonce), now, now + 29_999)).toBe('replay');
  });

  it('rejects timestamps outside ±window', () => {
    const w = new ReplayWindow(30_000, 100);
    expect(w.check(createGossipNonce(), now - 30_001, now)).toBe('stale');
    expect(w.check(createGossipNonce(), now + 30_001, now)).toBe('future');
    expect(w.check(createGossipNonce(), now - 30_000, now)).toBe('fresh');
    expect(w.check(createGossipNonce(), now + 30_000, now)).toBe('fresh');
  });

  it('forgets nonces once their packets are stale anyway', () => {
    const w = new ReplayWindow(30_000, 100);
    for (let i = 0; i < 50; i++) w.check(createGossipNonce(), now + i, now + i);
    expect(w.size).toBe(50);
    w.check(createGossipNonce(), now + 40_000, now + 40_000);
    expect(w.size).toBe(1);
  });

  it('stays bounded under load and never lets a forgotten nonce replay', () => {
    const w = new ReplayWindow(30_000, 64);
    const first = createGossipNonce();
    expect(w.check(first, now, now)).toBe('fresh');
    for (let i = 1; i <= 1000; i++)
      expect(w.check(createGossipNonce(), now + i, now + i)).toBe('fresh');
    expect(w.size).toBe(64);
    // `first` was evicted, but the watermark still rejects it.
    expect(w.check(first, now, now + 1001)).toBe('stale');
    expect(w.check(createGossipNonce(), now + 1001, now + 1001)).toBe('fresh');
  });
});

describe('PeerTable', () => {
  const peer = (incarnation: string, startedAt: number, port = 45893) => ({
    name: 'a@10.0.0.1',
    incarnation,
    startedAt,
    host: '10.0.0.1',
    port,
  });

  it('adds, refreshes, moves and replaces by newer incarnation only', () => {
    const t = new PeerTable();
    expect(t.hear(peer('i1', 100), 0)).toBe('new');
    expect(t.hear(peer('i1', 100), 10)).toBe('refreshed');
    expect(t.hear(peer('i1', 100, 4000), 20)).toBe('changed');
    expect(t.hear(peer('i2', 200, 5000), 30)).toBe('changed');
    expect(t.hear(peer('i1', 100), 40)).toBe('older');
    expect(t.endpoints()).toEqual([
      { host: '10.0.0.1', port: 5000, name: 'a@10.0.0.1', incarnation: 'i2' },
    ]);
    // equal start times: the larger incarnation id wins, deterministically on every node
    expect(t.hear(peer('i3', 200, 6000), 50)).toBe('changed');
    expect(t.hear(peer('i0', 200, 7000), 60)).toBe('older');
  });

  it('expires silent peers except members', () => {
    const t = new PeerTable();
    t.hear({ ...peer('i', 1), name: 'a' }, 0);
    t.hear({ ...peer('i', 1), name: 'b' }, 0);
    t.hear({ ...peer('i', 1), name: 'c' }, 900);
    const gone = t.expire(1000, 500, (name) => name === 'b');
    expect(gone.map((p) => p.name)).toEqual(['a']);
    expect(t.endpoints().map((e) => e.name)).toEqual(['b', 'c']);
  });
});

describe('parseEndpoint', () => {
  it('parses host:port and [v6]:port, and fills an unspecified host from the source', () => {
    expect(parseEndpoint('10.0.1.5:45893', '10.0.1.9')).toEqual({ host: '10.0.1.5', port: 45893 });
    expect(parseEndpoint('[fd00::1]:7000', '10.0.1.9')).toEqual({ host: 'fd00::1', port: 7000 });
    expect(parseEndpoint('node-a.local:7000', '10.0.1.9')).toEqual({
      host: 'node-a.local',
      port: 7000,
    });
    expect(parseEndpoint('0.0.0.0:7000', '10.0.1.9')).toEqual({ host: '10.0.1.9', port: 7000 });
    for (const bad of [
      '',
      '10.0.1.5',
      '10.0.1.5:0',
      '10.0.1.5:70000',
      ':45893',
      'fd00::1:45893',
      'a b:1',
    ]) {
      expect(parseEndpoint(bad, '10.0.1.9'), bad).toBeUndefined();
    }
  });
});

describe('GossipStrategy options', () => {
  it('has libcluster defaults, frozen', () => {
    expect(GOSSIP_DEFAULTS).toMatchObject({
      port: 45892,
      ifAddr: '0.0.0.0',
      multicastAddr: '233.252.1.32',
      multicastTtl: 1,
      broadcastOnly: false,
      heartbeatMaxMs: 5000,
    });
    expect(Object.isFrozen(GOSSIP_DEFAULTS)).toBe(true);
  });

  it('takes the cookie as key material when no secret is set', () => {
    expect(() => new GossipStrategy({ cookie: 'c' })).not.toThrow();
    expect(() => new GossipStrategy({ secret: 's' })).not.toThrow();
  });

  it('without secret and cookie: constructs (single-node apps build it), but start() reports and opens nothing', async () => {
    const strategy = new GossipStrategy({ port: 1 });
    const ctx = new FakeStrategyContext();
    await expect(strategy.start(ctx)).resolves.toBeUndefined();
    expect(ctx.errors).toHaveLength(1);
    expect(ctx.errors[0]).toBeInstanceOf(GossipOptionsError);
    expect(String((ctx.errors[0] as Error).message)).toContain('NODE_COOKIE');
    expect(ctx.logger.at('error')[0]).toContain('LIBCLUSTER_GOSSIP_SECRET');
    expect(strategy.stats().openAttempts).toBe(0);
    strategy.stop();
  });

  it('lists every problem in one error naming the environment variables', () => {
    let error: unknown;
    try {
      new GossipStrategy({
        port: 0,
        ifAddr: 'eth0',
        multicastAddr: '10.0.0.1',
        multicastIf: '::1',
        multicastTtl: 300,
        heartbeatMaxMs: 5,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GossipOptionsError);
    const problems = (error as GossipOptionsError).problems.join('\n');
    for (const name of [
      'LIBCLUSTER_GOSSIP_PORT',
      'LIBCLUSTER_GOSSIP_IF_ADDR',
      'LIBCLUSTER_GOSSIP_MULTICAST_ADDR',
      'LIBCLUSTER_GOSSIP_MULTICAST_IF',
      'LIBCLUSTER_GOSSIP_MULTICAST_TTL',
      'heartbeatMaxMs',
    ]) {
      expect(problems).toContain(name);
    }
    expect((error as GossipOptionsError).problems).toHaveLength(6);
  });

  it('needs a broadcast address, not a group, in broadcast-only mode (255.255.255.255 when unset)', () => {
    expect(() => new GossipStrategy({ cookie: 'c', broadcastOnly: true })).not.toThrow();
    expect(
      () => new GossipStrategy({ cookie: 'c', broadcastOnly: true, multicastAddr: '233.252.1.32' }),
    ).toThrow(/broadcast address/);
  });
});
