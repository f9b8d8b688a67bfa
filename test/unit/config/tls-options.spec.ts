import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterOptions } from '../../../lib/config/resolve-options.js';
import { problemsOf, resolveFromEnv } from '../../support/config-env.js';
import { TestCa, type IssuedCertificate } from '../../support/test-ca.js';

let ca: TestCa;
let other: TestCa;
let node: IssuedCertificate;
let expired: IssuedCertificate;
let foreign: IssuedCertificate;
let dir: string;

beforeAll(() => {
  ca = new TestCa('config-ca');
  other = new TestCa('other-ca');
  node = ca.issue({ san: ['IP:10.0.1.5', 'DNS:node-a.internal'], stem: 'node' });
  expired = ca.issue({
    san: ['IP:10.0.1.5'],
    stem: 'expired',
    startDate: '20200101000000Z',
    endDate: '20200102000000Z',
  });
  foreign = other.issue({ san: ['IP:10.0.1.5'], stem: 'foreign' });
  dir = mkdtempSync(join(tmpdir(), 'tls-config-'));
});
afterAll(() => {
  ca?.close();
  other?.close();
  rmSync(dir, { recursive: true, force: true });
});

const resolveEnv = (vars: Record<string, string>) =>
  resolveFromEnv({ NODE_COOKIE: 'c', NODE_NAME: 'app@10.0.1.5', ...vars });

const tlsEnv = (cert: IssuedCertificate, caFile = ca.caFile): Record<string, string> => ({
  CLUSTER_TLS_CERT_FILE: cert.certFile,
  CLUSTER_TLS_KEY_FILE: cert.keyFile,
  CLUSTER_TLS_CA_FILE: caFile,
});

describe('mutual TLS options', () => {
  it('maps the three files and the reload interval, checked at start-up', () => {
    const o = resolveEnv({ ...tlsEnv(node), CLUSTER_TLS_RELOAD_INTERVAL_MS: '2000' });
    expect(o.tls).toEqual({
      certFile: node.certFile,
      keyFile: node.keyFile,
      caFile: ca.caFile,
      reloadIntervalMs: 2000,
    });
    expect(resolveEnv({}).tls).toBeUndefined();
  });

  it('accepts a DNS name in the SAN for a node name with a host name', () => {
    const o = resolveEnv({ ...tlsEnv(node), NODE_NAME: 'app@node-a.internal' });
    expect(o.tls?.certFile).toBe(node.certFile);
  });

  it('needs all three files: each missing one is named', () => {
    expect(problemsOf(() => resolveEnv({ CLUSTER_TLS_CERT_FILE: node.certFile }))).toEqual([
      'CLUSTER_TLS_KEY_FILE: is required with CLUSTER_TLS_CERT_FILE: mutual TLS needs the certificate, its key and the CA file together',
      'CLUSTER_TLS_CA_FILE: is required with CLUSTER_TLS_CERT_FILE: mutual TLS needs the certificate, its key and the CA file together',
    ]);
    expect(
      problemsOf(() =>
        resolveEnv({ CLUSTER_TLS_KEY_FILE: node.keyFile, CLUSTER_TLS_CA_FILE: ca.caFile }),
      ),
    ).toEqual([
      'CLUSTER_TLS_CERT_FILE: is required with CLUSTER_TLS_KEY_FILE, CLUSTER_TLS_CA_FILE: mutual TLS needs the certificate, its key and the CA file together',
    ]);
  });

  it('names a missing, unreadable or non-PEM file with its path', () => {
    const unreadable = join(dir, 'unreadable.key');
    writeFileSync(unreadable, 'x');
    chmodSync(unreadable, 0o000);
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const problems = problemsOf(() =>
      resolveEnv({
        CLUSTER_TLS_CERT_FILE: join(dir, 'missing.crt'),
        CLUSTER_TLS_KEY_FILE: garbage,
        CLUSTER_TLS_CA_FILE: garbage,
      }),
    );
    expect(problems).toEqual([
      `CLUSTER_TLS_CERT_FILE: ${join(dir, 'missing.crt')}: cannot be read (ENOENT): no such file`,
      `CLUSTER_TLS_KEY_FILE: ${garbage}: holds no readable PEM private key (an encrypted key is not supported)`,
      `CLUSTER_TLS_CA_FILE: ${garbage}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    // root reads any file: only check the permission message where it applies
    if (process.getuid?.() !== 0) {
      expect(
        problemsOf(() => resolveEnv({ ...tlsEnv(node), CLUSTER_TLS_KEY_FILE: unreadable })),
      ).toEqual([
        `CLUSTER_TLS_KEY_FILE: ${unreadable}: cannot be read (EACCES): permission denied for the user running the app`,
      ]);
    }
    expect(problemsOf(() => resolveEnv({ ...tlsEnv(node), CLUSTER_TLS_CA_FILE: dir }))).toEqual([
      `CLUSTER_TLS_CA_FILE: ${dir}: cannot be read (EISDIR): is a directory, not a file`,
    ]);
  });

  it('refuses an expired certificate, one from another CA, a key of another certificate, and a certificate for another name', () => {
    expect(problemsOf(() => resolveEnv(tlsEnv(expired)))).toEqual([
      `CLUSTER_TLS_CERT_FILE: ${expired.certFile}: the certificate expired on 2020-01-02T00:00:00.000Z: issue a new one (peers refuse an expired certificate)`,
    ]);
    expect(problemsOf(() => resolveEnv(tlsEnv(foreign)))).toEqual([
      `CLUSTER_TLS_CERT_FILE: ${foreign.certFile}: the certificate (issuer CN=other-ca) is not issued by the CA in ${ca.caFile} (CN=config-ca): peers that trust that CA refuse it`,
    ]);
    expect(
      problemsOf(() => resolveEnv({ ...tlsEnv(node), CLUSTER_TLS_KEY_FILE: foreign.keyFile })),
    ).toEqual([
      `CLUSTER_TLS_KEY_FILE: ${foreign.keyFile}: is not the private key of the certificate in ${node.certFile}`,
    ]);
    expect(problemsOf(() => resolveEnv({ ...tlsEnv(node), NODE_NAME: 'app@10.0.1.6' }))).toEqual([
      `CLUSTER_TLS_CERT_FILE: ${node.certFile}: the certificate is for IP Address:10.0.1.5, DNS:node-a.internal, not for 10.0.1.6 (peers check it against this node's name)`,
    ]);
  });

  it('names option paths when set in code', () => {
    const problems = problemsOf(() =>
      resolveClusterOptions(
        { cookie: 'c', nodeName: 'app@10.0.1.5', tls: { certFile: node.certFile } },
        { env: {}, interfaces: () => ({}) },
      ),
    );
    expect(problems.map((p) => p.split(':')[0])).toEqual(['tls.keyFile', 'tls.caFile']);
  });
});
