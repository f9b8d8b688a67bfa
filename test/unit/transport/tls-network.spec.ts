import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_DEFAULTS } from '../../../lib/config/cluster.defaults.js';
import { ClusterConfigError } from '../../../lib/errors/cluster-config.error.js';
import { HandshakeFailedError } from '../../../lib/errors/handshake-failed.error.js';
import { LinkRefusedError } from '../../../lib/errors/link-refused.error.js';
import { PeerCertificateError } from '../../../lib/errors/peer-certificate.error.js';
import { systemClock, type Clock } from '../../../lib/runtime/clock.js';
import { systemRandom } from '../../../lib/runtime/random.js';
import { cookieKeyring } from '../../../lib/security/cookie-keyring.js';
import { dialerHandshake } from '../../../lib/transport/handshake.js';
import { TlsNetwork } from '../../../lib/transport/tls-network.js';
import { TcpNetwork } from '../../../lib/transport/tcp-network.js';
import { RecordingLogger } from '../strategies/fake-context.js';
import { testIdentity } from '../../support/raw-peer.js';
import { TestCa, type IssuedCertificate } from '../../support/test-ca.js';
import { COOKIE, LOCALHOST, nextLink, until, useTransportCleanup, within } from './helpers.js';

/**
 * Links over mutual TLS on loopback, with certificates made by `openssl` in a temp dir: the
 * cluster CA, a second CA nobody trusts, and node certificates for 127.0.0.1.
 */
const { cleanup, started } = useTransportCleanup();

let ca: TestCa;
let rogue: TestCa;
let good: IssuedCertificate;
let good2: IssuedCertificate;
let expired: IssuedCertificate;
let fromRogue: IssuedCertificate;
let on2: IssuedCertificate;
let on3: IssuedCertificate;

beforeAll(() => {
  ca = new TestCa('cluster-ca');
  rogue = new TestCa('rogue-ca');
  good = ca.issue({ san: ['IP:127.0.0.1', 'DNS:node-a.test'], stem: 'good' });
  good2 = ca.issue({ san: ['IP:127.0.0.1'], stem: 'good2' });
  expired = ca.issue({
    san: ['IP:127.0.0.1'],
    stem: 'expired',
    startDate: '20200101000000Z',
    endDate: '20200102000000Z',
  });
  fromRogue = rogue.issue({ san: ['IP:127.0.0.1'], stem: 'rogue' });
  on2 = ca.issue({ san: ['IP:127.0.0.2'], stem: 'on2' });
  on3 = ca.issue({ san: ['IP:127.0.0.3'], stem: 'on3' });
});
afterAll(() => {
  ca?.close();
  rogue?.close();
});

/** A clock whose wall time is 2020-01-01 12:00 (an expired certificate loads there). */
const in2020: Clock = { ...systemClock, wallNow: () => Date.parse('2020-01-01T12:00:00Z') };

function network(
  cert: IssuedCertificate,
  options: {
    caFile?: string;
    nodeName?: string;
    clock?: Clock;
    reloadIntervalMs?: number;
    handshakeTimeoutMs?: number;
  } = {},
): { network: TlsNetwork; logger: RecordingLogger } {
  const logger = new RecordingLogger();
  const net = new TlsNetwork({
    files: { certFile: cert.certFile, keyFile: cert.keyFile, caFile: options.caFile ?? ca.caFile },
    nodeName: options.nodeName ?? 'node@127.0.0.1',
    logger,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.reloadIntervalMs ? { reloadIntervalMs: options.reloadIntervalMs } : {}),
    ...(options.handshakeTimeoutMs ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
  });
  return { network: net, logger };
}

/** A transport over `net` named `name@127.0.0.1`, logging into `logger`. */
function tlsNode(name: string, net: TlsNetwork, logger: RecordingLogger) {
  return started(`${name}@127.0.0.1`, { network: net, logger });
}

const warnings = (logger: RecordingLogger, pattern: RegExp) =>
  logger.at('warn').filter((line) => pattern.test(line));

describe('TlsNetwork: links over mutual TLS 1.3', () => {
  it('two nodes with certificates from one CA link over TLS 1.3, both sides verified', async () => {
    const a = network(good);
    const b = network(good2);
    const na = await tlsNode('a', a.network, a.logger);
    const nb = await tlsNode('b', b.network, b.logger);
    const inbound = nextLink(na.transport);
    const outbound = await nb.transport.dial(LOCALHOST, na.port);
    const accepted = await within(inbound, 5000, 'inbound link');
    expect(outbound.peer.name).toBe('a@127.0.0.1');
    expect(accepted.peer.name).toBe('b@127.0.0.1');
    const received = new Promise<Buffer>((resolve) =>
      accepted.on('frame', (_type, payload) => resolve(payload)),
    );
    expect(outbound.send(16, Buffer.from('over tls'))).toBe(true);
    expect((await within(received, 5000, 'frame')).toString()).toBe('over tls');
    // the link's socket is TLS 1.3, and each side saw a CA-verified certificate
    const socket = (outbound as unknown as { socket: TLSSocket }).socket;
    expect(socket.getProtocol()).toBe('TLSv1.3');
    expect(socket.authorized).toBe(true);
    expect(socket.getPeerCertificate().subjectaltname).toContain('DNS:node-a.test');
  });

  it('a node whose certificate comes from another CA is refused both ways, naming the reason', async () => {
    const a = network(good);
    const r = network(fromRogue, { caFile: rogue.caFile });
    const na = await tlsNode('a', a.network, a.logger);
    const nr = await tlsNode('r', r.network, r.logger);
    let links = 0;
    na.transport.on('link', () => links++);
    nr.transport.on('link', () => links++);
    // a dials r: a does not trust r's certificate
    const fromA = await na.transport.dial(LOCALHOST, nr.port).catch((e: unknown) => e);
    expect(fromA).toBeInstanceOf(PeerCertificateError);
    // the rogue listener sends its CA along: OpenSSL reports a self-signed chain
    expect((fromA as Error).message).toBe(
      `refused the TLS link to 127.0.0.1:${nr.port}: its certificate is not issued by the cluster CA (SELF_SIGNED_CERT_IN_CHAIN; trusted CA: ${ca.caFile})`,
    );
    // r dials a: r does not trust a's certificate (a sends its CA along, too)
    const fromR = await nr.transport.dial(LOCALHOST, na.port).catch((e: unknown) => e);
    expect(fromR).toMatchObject({ side: 'local', code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect((fromR as Error).message).toContain(`trusted CA: ${rogue.caFile}`);
    expect(links).toBe(0);
  });

  it('a listener refuses a client certificate from another CA and tells the dialer why', async () => {
    const a = network(good);
    const na = await tlsNode('a', a.network, a.logger);
    // a hostile client: trusts the cluster CA, presents a certificate of another CA
    const socket = tlsConnect({
      host: LOCALHOST,
      port: na.port,
      cert: readFileSync(fromRogue.certFile),
      key: readFileSync(fromRogue.keyFile),
      ca: readFileSync(ca.caFile),
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    cleanup.push(() => socket.destroy());
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    const error = await dialerHandshake(socket, {
      keyring: cookieKeyring(COOKIE),
      clock: systemClock,
      random: systemRandom,
      identity: testIdentity('hostile@127.0.0.1'),
      timeoutMs: 5000,
      peerAddress: `127.0.0.1:${na.port}`,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerCertificateError);
    expect((error as PeerCertificateError).side).toBe('remote');
    const lines = warnings(a.logger, /refused a TLS link from 127\.0\.0\.1:\d+/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('its certificate is not issued by the cluster CA');
    expect(lines[0]).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(lines[0]).toContain('CN=rogue-ca');
    expect(lines[0]).toContain(`trusted CA: ${ca.caFile}`);
    expect(na.transport.linkCount).toBe(0);
    expect(na.transport.pendingHandshakes).toBe(0);
  });

  it('a dialer refuses a listener with an expired certificate, naming the reason', async () => {
    const old = network(expired, { clock: in2020 });
    const b = network(good2);
    const nold = await tlsNode('old', old.network, old.logger);
    const nb = await tlsNode('b', b.network, b.logger);
    const error = await nb.transport.dial(LOCALHOST, nold.port).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerCertificateError);
    expect((error as PeerCertificateError).side).toBe('local');
    expect((error as Error).message).toBe(
      `refused the TLS link to 127.0.0.1:${nold.port}: its certificate has expired (CERT_HAS_EXPIRED; trusted CA: ${ca.caFile})`,
    );
    expect(nold.transport.linkCount).toBe(0);
  });

  it('logs, naming the file, when its own certificate expires while running', async () => {
    let wall = Date.parse('2020-01-01T12:00:00Z');
    const clock: Clock = { ...systemClock, wallNow: () => wall };
    const old = network(expired, { clock, reloadIntervalMs: 20 });
    await tlsNode('old', old.network, old.logger);
    wall = Date.now();
    await until(() => old.logger.at('error').length > 0, 3000, 'the expiry error');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = old.logger.at('error');
    expect(lines).toHaveLength(1); // once an hour, not every check
    expect(lines[0]).toBe(
      `TLS: the certificate in CLUSTER_TLS_CERT_FILE (${expired.certFile}) expired on 2020-01-02T00:00:00.000Z: peers refuse new links from this node; replace the file (it is re-read within 40 ms)`,
    );
  });

  it('a listener refuses a dialer with an expired certificate', async () => {
    const a = network(good);
    const old = network(expired, { clock: in2020 });
    const na = await tlsNode('a', a.network, a.logger);
    const nold = await tlsNode('old', old.network, old.logger);
    const error = await nold.transport.dial(LOCALHOST, na.port).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerCertificateError);
    expect((error as PeerCertificateError).side).toBe('remote');
    const lines = warnings(a.logger, /refused a TLS link/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('its certificate has expired (CERT_HAS_EXPIRED');
  });

  it('checks the certificate against the name the handshake proved, on both sides', async () => {
    const honest = network(good);
    // a valid certificate for 127.0.0.1, claiming to be a node on 10.9.9.9
    const impostorLogger = new RecordingLogger();
    const nh = await tlsNode('honest', honest.network, honest.logger);
    const ni = await started('impostor@10.9.9.9', {
      network: network(good2).network,
      logger: impostorLogger,
    });
    let links = 0;
    nh.transport.on('link', () => links++);
    ni.transport.on('link', () => links++);

    // the impostor dials: the listener refuses before WELCOME
    const dialed = await ni.transport.dial(LOCALHOST, nh.port).catch((e: unknown) => e);
    expect(dialed).toBeInstanceOf(LinkRefusedError);
    expect(dialed).toMatchObject({ reason: 'certificate', by: 'remote' });
    const local = warnings(honest.logger, /refused a link with impostor@10\.9\.9\.9/);
    expect(local).toHaveLength(1);
    expect(local[0]).toMatch(
      /its certificate \(CN=127\.0\.0\.1, IP Address:127\.0\.0\.1.*\) is not for impostor@10\.9\.9\.9: the certificate is for IP Address:127\.0\.0\.1, not for 10\.9\.9\.9/,
    );
    expect(warnings(impostorLogger, /refused this node's certificate/)).toHaveLength(1);

    // the honest node dials the impostor: it refuses in its AUTH
    const back = await nh.transport.dial(LOCALHOST, ni.port).catch((e: unknown) => e);
    expect(back).toBeInstanceOf(LinkRefusedError);
    expect(back).toMatchObject({ reason: 'certificate', by: 'local' });
    expect(links).toBe(0);
  });

  it('a plain-TCP node and a TLS node refuse each other, saying that TLS is missing on one side', async () => {
    const a = network(good);
    const na = await tlsNode('a', a.network, a.logger);
    const plainLogger = new RecordingLogger();
    const plain = await started('plain@127.0.0.1', {
      network: new TcpNetwork(),
      logger: plainLogger,
    });
    const fromPlain = await plain.transport.dial(LOCALHOST, na.port).catch((e: unknown) => e);
    expect(fromPlain).toBeInstanceOf(HandshakeFailedError);
    await until(() => warnings(a.logger, /does not speak TLS/).length === 1, 3000, 'TLS warning');
    expect(warnings(a.logger, /does not speak TLS/)[0]).toContain('CLUSTER_TLS_CERT_FILE');

    const toPlain = await na.transport.dial(LOCALHOST, plain.port).catch((e: unknown) => e);
    expect(toPlain).toBeInstanceOf(HandshakeFailedError);
    expect((toPlain as Error).message).toMatch(
      /it does not speak TLS \(\w+ in the TLS handshake\): every node needs CLUSTER_TLS_CERT_FILE/,
    );
  });

  it('re-reads replaced files: new links present the new certificate, live links stay up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-rotation-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const files = {
      certFile: join(dir, 'node.crt'),
      keyFile: join(dir, 'node.key'),
      caFile: join(dir, 'ca.crt'),
    };
    const install = (cert: IssuedCertificate): void => {
      // as a secret mount or certbot does it: write aside, then rename over
      copyFileSync(cert.certFile, `${files.certFile}.tmp`);
      copyFileSync(cert.keyFile, `${files.keyFile}.tmp`);
      renameSync(`${files.certFile}.tmp`, files.certFile);
      renameSync(`${files.keyFile}.tmp`, files.keyFile);
    };
    copyFileSync(ca.caFile, files.caFile);
    install(good);
    const logger = new RecordingLogger();
    const rotating = new TlsNetwork({
      files,
      nodeName: 'rot@127.0.0.1',
      logger,
      reloadIntervalMs: 50,
    });
    const nr = await started('rot@127.0.0.1', { network: rotating, logger });
    const peer = await started('peer@127.0.0.1', { network: network(good2).network });
    const serialSeen = async (): Promise<string> => {
      const link = await peer.transport.dial(LOCALHOST, nr.port);
      const serial = (link as unknown as { socket: TLSSocket }).socket.getPeerCertificate()
        .serialNumber;
      return serial;
    };
    const first = await peer.transport.dial(LOCALHOST, nr.port);
    const firstSerial = (first as unknown as { socket: TLSSocket }).socket.getPeerCertificate()
      .serialNumber;

    const renewed = ca.issue({ san: ['IP:127.0.0.1'], stem: 'renewed' });
    install(renewed);
    await until(
      () => logger.at('log').some((l) => l.includes('TLS: loaded the new certificate')),
      5000,
      'the reload',
    );
    const secondSerial = await serialSeen();
    expect(secondSerial).not.toBe(firstSerial);
    expect(rotating.certificate.serialNumber).toBe(secondSerial);
    expect(first.closed).toBe(false);

    // a bad replacement (a key of another certificate) is refused, the last good one stays
    copyFileSync(expired.keyFile, files.keyFile);
    await until(
      () => logger.at('error').some((l) => l.includes('TLS: not loading the changed files')),
      5000,
      'the refused reload',
    );
    const refusedLine = logger.at('error').find((l) => l.includes('not loading'))!;
    expect(refusedLine).toContain(
      `CLUSTER_TLS_KEY_FILE: ${files.keyFile}: is not the private key of the certificate in ${files.certFile}`,
    );
    expect(await serialSeen()).toBe(secondSerial);
  });

  it('1,000 TCP connections from one address that never start TLS: it holds half the TLS handshake slots at most, another address links meanwhile, the flooder links once it stops', async () => {
    // The defaults: 256 pending handshakes, 4 per address once half of them are taken.
    const cap = CLUSTER_DEFAULTS.maxPendingHandshakes;
    const b = network(good, { handshakeTimeoutMs: 30_000 });
    const nb = await started('b@127.0.0.1', {
      network: b.network,
      logger: b.logger,
      handshakeTimeoutMs: 30_000,
    });
    // Each connection opens TCP from 127.0.0.2 and never sends a ClientHello.
    const flood: Socket[] = [];
    let maxPending = 0;
    const openOne = () =>
      new Promise<void>((resolve) => {
        const socket = tcpConnect({ host: LOCALHOST, port: nb.port, localAddress: '127.0.0.2' });
        flood.push(socket);
        socket.on('error', () => undefined);
        socket.once('connect', () => resolve());
        socket.once('close', () => resolve());
      });
    cleanup.push(() => flood.forEach((s) => s.destroy()));
    // Bounded: 1,000 connections, 50 at a time.
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, openOne));
      maxPending = Math.max(maxPending, b.network.pendingHandshakes);
    }
    await until(
      () => flood.filter((s) => !s.destroyed).length <= cap / 2,
      5000,
      'the TLS listener kept more than half its pending slots for one address',
    );
    expect(flood.filter((s) => !s.destroyed)).toHaveLength(cap / 2);
    expect(b.network.pendingHandshakes).toBe(cap / 2);
    expect(maxPending).toBeLessThanOrEqual(cap / 2);
    // None of them reached the cookie handshake.
    expect(nb.transport.pendingHandshakes).toBe(0);

    // A node on another address links over mutual TLS while the flood holds its slots.
    const a3 = network(on3, { nodeName: 'a@127.0.0.3' });
    const na = await started('a@127.0.0.3', {
      network: a3.network,
      logger: a3.logger,
      bindAddress: '127.0.0.3',
    });
    const inbound = nextLink(nb.transport);
    const link = await within(na.transport.dial(LOCALHOST, nb.port), 5000, 'a could not link');
    expect(link.peer.name).toBe('b@127.0.0.1');
    const accepted = await within(inbound, 2000, 'b emitted no link');
    expect(accepted.peer.name).toBe('a@127.0.0.3');
    expect((accepted as unknown as { socket: TLSSocket }).socket.remoteAddress).toBe('127.0.0.3');
    // Its TLS slot was given back once its session was up.
    expect(b.network.pendingHandshakes).toBe(cap / 2);

    // A real node on the flooder's address is locked out meanwhile…
    const c2 = network(on2, { nodeName: 'c@127.0.0.2' });
    const nc = await started('c@127.0.0.2', {
      network: c2.network,
      logger: c2.logger,
      bindAddress: '127.0.0.2',
    });
    const lockedOut = await nc.transport.dial(LOCALHOST, nb.port).catch((e: unknown) => e);
    expect(lockedOut).toBeInstanceOf(HandshakeFailedError);
    expect((lockedOut as Error).message).toContain('too many handshakes pending there');
    expect(b.network.pendingHandshakes).toBe(cap / 2);
    // …and links once the flood stops.
    flood.forEach((s) => s.destroy());
    await until(() => b.network.pendingHandshakes === 0, 5000, 'the flood was not released');
    const inboundBack = nextLink(nb.transport);
    const back = await within(nc.transport.dial(LOCALHOST, nb.port), 5000, 'c could not link');
    expect(back.peer.name).toBe('b@127.0.0.1');
    expect((await within(inboundBack, 2000, 'b emitted no link')).peer.name).toBe('c@127.0.0.2');
    expect(b.network.pendingHandshakes).toBe(0);
    expect(nb.transport.pendingHandshakes).toBe(0);
    // One rate-limited line about the flooding address, in the transport's words.
    const lines = warnings(b.logger, /handshakes from 127\.0\.0\.2 already pending/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^${cap / 2} handshakes from 127\\.0\\.0\\.2 already pending: dropping the connection from 127\\.0\\.0\\.2:\\d+$`,
      ),
    );
  });

  it('a connection gives its TLS handshake slot back when the handshake fails or times out', async () => {
    const b = network(good, { handshakeTimeoutMs: 300 });
    const nb = await started('b@127.0.0.1', { network: b.network, logger: b.logger });
    const sockets: Socket[] = [];
    cleanup.push(() => sockets.forEach((s) => s.destroy()));
    for (let i = 0; i < 10; i++) {
      const socket = tcpConnect({ host: LOCALHOST, port: nb.port });
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.resume();
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // half of them send bytes that are no ClientHello, the others nothing at all
      if (i % 2 === 0) socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    }
    await until(() => b.network.pendingHandshakes === 0, 5000, 'slots not given back');
    await until(() => sockets.every((s) => s.destroyed), 5000, 'connections not closed');
    expect(nb.transport.pendingHandshakes).toBe(0);
    // and a node still links afterwards
    const peer = await started('peer@127.0.0.1', { network: network(good2).network });
    const link = await within(peer.transport.dial(LOCALHOST, nb.port), 5000, 'no link');
    expect(link.peer.name).toBe('b@127.0.0.1');
    expect(b.network.pendingHandshakes).toBe(0);
  });

  it('refuses to start with files that cannot work, naming each variable and file', () => {
    expect(() => network(expired)).toThrow(ClusterConfigError);
    expect(() => network(expired)).toThrow(
      /CLUSTER_TLS_CERT_FILE: .*expired\.crt: the certificate expired on 2020-01-02/,
    );
    expect(() => network(good, { nodeName: 'a@10.0.0.9' })).toThrow(
      /the certificate is for IP Address:127\.0\.0\.1, DNS:node-a\.test, not for 10\.0\.0\.9/,
    );
  });
});
