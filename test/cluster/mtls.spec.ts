import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkRefusedError } from '../../lib/errors/link-refused.error.js';
import { PeerCertificateError } from '../../lib/errors/peer-certificate.error.js';
import { systemClock } from '../../lib/runtime/clock.js';
import { TlsNetwork } from '../../lib/transport/tls-network.js';
import { Transport } from '../../lib/transport/transport.js';
import { RecordingLogger } from '../unit/strategies/fake-context.js';
import {
  ensureSampleBuilt,
  pollUntil,
  SAMPLE_MAIN,
  startNode,
  useNodeCleanup,
  type NodeProcess,
} from '../support/node-process.js';
import { testIdentity } from '../support/raw-peer.js';
import { TestCa, type IssuedCertificate } from '../support/test-ca.js';

/**
 * Sample-app processes linked over mutual TLS inside the test network namespace: each on its
 * own loopback address (127.0.0.2, 127.0.0.3, …, default link port), static strategy,
 * certificates for those addresses made by `openssl` in a temp dir. What a user sees: the
 * membership over HTTP, and the log lines of refused certificates.
 */
const NETNS = process.env.CLUSTER_TEST_NETNS === '1';
const PORT = 45893;
const COOKIE = 'mtls-cluster-cookie-0123456789';
const hostOf = (i: number) => `127.0.0.${i + 1}`;
const nameOf = (i: number) => `app@${hostOf(i)}`;
const HOSTS = [1, 2, 3].map((i) => `${hostOf(i)}:${PORT}`).join(',');

useNodeCleanup();

let ca: TestCa;
let rogueCa: TestCa;
/** Node i's certificate files, in a directory of its own (rotation replaces them there). */
const files = new Map<number, { certFile: string; keyFile: string; caFile: string }>();
let workDir: string;

function install(i: number, cert: IssuedCertificate, caFile = ca.caFile): void {
  const dir = join(workDir, `node${i}`);
  const target = { certFile: join(dir, 'node.crt'), keyFile: join(dir, 'node.key'), caFile };
  mkdirSync(dir, { recursive: true });
  // write aside, then rename over: the reload never sees half a rotation
  for (const [from, to] of [
    [cert.certFile, target.certFile],
    [cert.keyFile, target.keyFile],
  ] as const) {
    copyFileSync(from, `${to}.tmp`);
    renameSync(`${to}.tmp`, to);
  }
  files.set(i, target);
}

function envFor(i: number, extra: Record<string, string> = {}): Record<string, string> {
  const f = files.get(i)!;
  return {
    NODE_COOKIE: COOKIE,
    NODE_NAME: nameOf(i),
    LIBCLUSTER_STRATEGY: 'static',
    LIBCLUSTER_HOSTS: HOSTS,
    LIBCLUSTER_POLLING_INTERVAL: '500',
    CLUSTER_BIND_ADDRESS: hostOf(i),
    CLUSTER_PORT: String(PORT),
    CLUSTER_HEARTBEAT_INTERVAL_MS: '250',
    CLUSTER_FAILURE_TIMEOUT_MS: '2000',
    CLUSTER_TLS_CERT_FILE: f.certFile,
    CLUSTER_TLS_KEY_FILE: f.keyFile,
    CLUSTER_TLS_CA_FILE: f.caFile,
    CLUSTER_TLS_RELOAD_INTERVAL_MS: '200',
    ...extra,
  };
}

/** Runs the sample app until it exits (a start-up that must fail). */
function runToExit(env: Record<string, string>): Promise<{ code: number | null; printed: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'mtls-config-error-'));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SAMPLE_MAIN],
      {
        cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', PORT: '0', ...env },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        rmSync(cwd, { recursive: true, force: true });
        const code = error ? ((error as { code?: number | null }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, printed: `${stdout}${stderr}` });
      },
    );
  });
}

/** A transport in this test process presenting `cert`, as a hostile or broken node would. */
async function rogueTransport(
  cert: IssuedCertificate,
  options: { name: string; certName: string; wallNow?: number },
): Promise<Transport> {
  const network = new TlsNetwork({
    files: { certFile: cert.certFile, keyFile: cert.keyFile, caFile: ca.caFile },
    nodeName: options.certName,
    logger: new RecordingLogger(),
    ...(options.wallNow !== undefined
      ? { clock: { ...systemClock, wallNow: () => options.wallNow! } }
      : {}),
  });
  const transport = new Transport({
    identity: () => testIdentity(options.name, { endpoint: '127.0.0.1:1' }),
    cookie: COOKIE,
    bindAddress: '127.0.0.1',
    port: 0,
    acceptedTypes: new Set([16]),
    network,
    logger: new RecordingLogger(),
  });
  await transport.listen();
  return transport;
}

describe.skipIf(!NETNS)('mutual TLS between real processes', () => {
  const nodes = new Map<number, NodeProcess>();

  beforeAll(async () => {
    await ensureSampleBuilt();
    workDir = mkdtempSync(join(tmpdir(), 'mtls-cluster-'));
    ca = new TestCa('cluster-ca');
    rogueCa = new TestCa('rogue-ca');
  }, 60_000);
  afterAll(() => {
    ca?.close();
    rogueCa?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('two nodes with certificates from one CA form a cluster over TLS', async () => {
    for (const i of [1, 2]) install(i, ca.issue({ san: [`IP:${hostOf(i)}`], stem: `node${i}` }));
    const [a, b] = await Promise.all(
      [1, 2].map((i) => startNode({ name: nameOf(i), env: envFor(i) })),
    );
    nodes.set(1, a);
    nodes.set(2, b);
    await a.waitForMembers([nameOf(1), nameOf(2)], 30_000);
    await b.waitForMembers([nameOf(1), nameOf(2)], 30_000);
  }, 90_000);

  it('a node whose certificate comes from another CA is refused both ways, one log line per peer', async () => {
    install(3, rogueCa.issue({ san: [`IP:${hostOf(3)}`], stem: 'rogue3' }), rogueCa.caFile);
    const rogue = await startNode({ name: nameOf(3), env: envFor(3) });
    nodes.set(3, rogue);
    const a = nodes.get(1)!;
    const refusedRogue = new RegExp(
      `refused the TLS link to ${hostOf(3).replace(/\./g, '\\.')}:${PORT}: its certificate is not issued by the cluster CA`,
    );
    await a.waitForOutput(refusedRogue, 15_000);
    await rogue.waitForOutput(
      new RegExp(
        `refused the TLS link to ${hostOf(1).replace(/\./g, '\\.')}:${PORT}: its certificate is not issued by the cluster CA`,
      ),
      15_000,
    );
    // several redials later: still one line a minute, and no one let it in
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(a.lines(refusedRogue)).toHaveLength(1);
    expect(await a.memberNames()).toEqual([nameOf(1), nameOf(2)]);
    expect(await rogue.memberNames()).toEqual([nameOf(3)]);
    await rogue.shutdown();
    nodes.delete(3);
  }, 60_000);

  it('a node with an expired certificate, or one for another name, does not start: the error names the file', async () => {
    const expired = ca.issue({
      san: [`IP:${hostOf(3)}`],
      stem: 'expired3',
      startDate: '20200101000000Z',
      endDate: '20200102000000Z',
    });
    install(3, expired);
    const old = await runToExit(envFor(3));
    expect(old.code, old.printed).toBe(1);
    expect(old.printed).toContain(
      `CLUSTER_TLS_CERT_FILE: ${files.get(3)!.certFile}: the certificate expired on 2020-01-02T00:00:00.000Z`,
    );
    install(3, ca.issue({ san: ['IP:127.0.0.9'], stem: 'elsewhere3' }));
    const misnamed = await runToExit(envFor(3));
    expect(misnamed.code, misnamed.printed).toBe(1);
    expect(misnamed.printed).toContain(
      `CLUSTER_TLS_CERT_FILE: ${files.get(3)!.certFile}: the certificate is for IP Address:127.0.0.9, not for ${hostOf(3)}`,
    );
    const missing = await runToExit({ ...envFor(3), CLUSTER_TLS_KEY_FILE: '' });
    expect(missing.code).toBe(1);
    expect(missing.printed).toContain(
      'CLUSTER_TLS_KEY_FILE: is required with CLUSTER_TLS_CERT_FILE, CLUSTER_TLS_CA_FILE',
    );
  }, 60_000);

  it('a running node refuses an expired certificate and one for another name, logging the peer and the reason', async () => {
    const a = nodes.get(1)!;
    const expired = ca.issue({
      san: ['IP:127.0.0.1'],
      stem: 'expired-client',
      startDate: '20200101000000Z',
      endDate: '20200102000000Z',
    });
    const stale = await rogueTransport(expired, {
      name: 'stale@127.0.0.1',
      certName: 'stale@127.0.0.1',
      wallNow: Date.parse('2020-01-01T12:00:00Z'),
    });
    try {
      const error = await stale.dial(hostOf(1), PORT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PeerCertificateError);
      expect((error as PeerCertificateError).side).toBe('remote');
    } finally {
      await stale.close();
    }
    await a.waitForOutput(
      /refused a TLS link from 127\.0\.0\.1:\d+: its certificate has expired \(CERT_HAS_EXPIRED; .*trusted CA: /,
    );

    // a valid certificate of the cluster CA, for 127.0.0.1, claiming another node's name
    const impostor = await rogueTransport(ca.issue({ san: ['IP:127.0.0.1'], stem: 'impostor' }), {
      name: nameOf(2),
      certName: 'x@127.0.0.1',
    });
    try {
      const error = await impostor.dial(hostOf(1), PORT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LinkRefusedError);
      expect(error).toMatchObject({ reason: 'certificate', by: 'remote' });
    } finally {
      await impostor.close();
    }
    const line = await a.waitForOutput(/refused a link with app@127\.0\.0\.3 at 127\.0\.0\.1:\d+/);
    expect(line).toContain(
      'is not for app@127.0.0.3: the certificate is for IP Address:127.0.0.1, not for 127.0.0.3',
    );
    // the real app@127.0.0.3 is still a member
    expect(await a.memberNames()).toEqual([nameOf(1), nameOf(2)]);
  }, 60_000);

  it('rotates a certificate without a restart: new links present the new one', async () => {
    const a = nodes.get(1)!;
    const b = nodes.get(2)!;
    const renewed = ca.issue({ san: [`IP:${hostOf(1)}`], stem: 'node1-renewed' });
    const renewedSerial = new X509Certificate(readFileSync(renewed.certFile)).serialNumber;
    install(1, renewed);
    await a.waitForOutput(/TLS: loaded the new certificate from .*; new links use it/, 10_000);

    // a new TLS connection to node 1 sees the renewed certificate
    const client = files.get(2)!;
    const serial = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({
        host: hostOf(1),
        port: PORT,
        cert: readFileSync(client.certFile),
        key: readFileSync(client.keyFile),
        ca: readFileSync(client.caFile),
        minVersion: 'TLSv1.3',
        checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.destroy();
      });
      socket.once('error', reject);
    });
    expect(serial.toUpperCase()).toBe(renewedSerial.toUpperCase());

    // the cluster is intact, and a restarted peer links again under the new certificate
    expect(await b.memberNames()).toEqual([nameOf(1), nameOf(2)]);
    await b.shutdown();
    const b2 = await startNode({ name: nameOf(2), env: envFor(2) });
    nodes.set(2, b2);
    await b2.waitForMembers([nameOf(1), nameOf(2)], 30_000);
    const ok = await pollUntil(async () => (await a.memberNames()).includes(nameOf(2)), 20_000);
    expect(ok).toBe(true);
  }, 90_000);
});
