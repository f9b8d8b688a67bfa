import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';

/** The three files of mutual TLS, as configured. */
export interface TlsFiles {
  /** PEM certificate of this node (`CLUSTER_TLS_CERT_FILE`); intermediates may follow it. */
  readonly certFile: string;
  /** PEM private key of that certificate (`CLUSTER_TLS_KEY_FILE`). */
  readonly keyFile: string;
  /** PEM certificate(s) of the CA that signs every node's certificate (`CLUSTER_TLS_CA_FILE`). */
  readonly caFile: string;
}

/** Which of the three files a problem is about. */
export type TlsFileKind = keyof TlsFiles;

/** The environment variable of each file, for messages. */
export const TLS_FILE_VARIABLES: Readonly<Record<TlsFileKind, string>> = Object.freeze({
  certFile: 'CLUSTER_TLS_CERT_FILE',
  keyFile: 'CLUSTER_TLS_KEY_FILE',
  caFile: 'CLUSTER_TLS_CA_FILE',
});

/** One thing wrong with the files: which file, and why (the path is in the message). */
export interface TlsProblem {
  readonly file: TlsFileKind;
  readonly message: string;
}

/** The files' contents, checked: what a `SecureContext` is made of. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  /** This node's (leaf) certificate. */
  readonly certificate: X509Certificate;
}

/** Seams of {@link loadTlsMaterial}. */
export interface LoadTlsOptions {
  /** Wall clock, epoch ms: validity is checked against it. */
  readonly now: number;
  /** The host of this node's name: the certificate must be for it (SAN DNS or IP). */
  readonly host?: string;
  /** @default fs.readFileSync */
  readonly readFile?: (path: string) => Buffer;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks the three files the way a peer will: the key is readable and belongs to
 * the certificate, the certificate is issued by (one of) the CA certificate(s), is valid now
 * and — given `host` — is for the node name's host. Returns every problem, each naming its
 * file; the material only when there is none.
 */
export function loadTlsMaterial(
  files: TlsFiles,
  options: LoadTlsOptions,
): { material?: TlsMaterial; problems: TlsProblem[] } {
  const read = options.readFile ?? readFileSync;
  const problems: TlsProblem[] = [];
  const say = (file: TlsFileKind, message: string): void => {
    problems.push({ file, message: `${files[file]}: ${message}` });
  };
  const contents: Partial<Record<TlsFileKind, Buffer>> = {};
  for (const file of ['certFile', 'keyFile', 'caFile'] as const) {
    try {
      contents[file] = read(files[file]);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      say(file, `cannot be read (${code}): ${describeReadError(code)}`);
    }
  }

  let certificate: X509Certificate | undefined;
  let intermediates: X509Certificate[] = [];
  if (contents.certFile) {
    [certificate, ...intermediates] = certificates(contents.certFile);
    if (!certificate) say('certFile', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  }
  let key: KeyObject | undefined;
  if (contents.keyFile) {
    try {
      key = createPrivateKey(contents.keyFile);
    } catch {
      say('keyFile', 'holds no readable PEM private key (an encrypted key is not supported)');
    }
  }
  const cas: X509Certificate[] = [];
  if (contents.caFile) {
    for (const pem of contents.caFile.toString('latin1').match(PEM_CERT) ?? []) {
      try {
        cas.push(new X509Certificate(pem));
      } catch {
        say('caFile', 'holds a PEM block that is not a certificate');
      }
    }
    if (cas.length === 0 && !problems.some((p) => p.file === 'caFile'))
      say('caFile', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  }

  if (certificate) {
    const notBefore = Date.parse(certificate.validFrom);
    const notAfter = Date.parse(certificate.validTo);
    if (notAfter < options.now) {
      say(
        'certFile',
        `the certificate expired on ${new Date(notAfter).toISOString()}: issue a new one (peers refuse an expired certificate)`,
      );
    } else if (notBefore > options.now) {
      say(
        'certFile',
        `the certificate is not valid before ${new Date(notBefore).toISOString()} (is this host's clock right?)`,
      );
    }
    if (key && !certificate.checkPrivateKey(key)) {
      problems.push({
        file: 'keyFile',
        message: `${files.keyFile}: is not the private key of the certificate in ${files.certFile}`,
      });
    }
    if (cas.length > 0 && !chainsTo(certificate, intermediates, cas)) {
      say(
        'certFile',
        `the certificate (issuer ${oneLine(certificate.issuer)}) is not issued by the CA in ${files.caFile} (${cas.map((ca) => oneLine(ca.subject)).join('; ')}): peers that trust that CA refuse it`,
      );
    }
    if (options.host !== undefined) {
      const mismatch = certificateNameProblem(certificate, options.host);
      if (mismatch) say('certFile', `${mismatch} (peers check it against this node's name)`);
    }
  }
  if (problems.length > 0 || !certificate || !contents.keyFile || !contents.caFile)
    return { problems };
  return {
    problems,
    material: {
      cert: contents.certFile!,
      key: contents.keyFile,
      ca: contents.caFile,
      certificate,
    },
  };
}

/**
 * Why a certificate is not for `host` (the host of a node name): its SAN must list it, as a
 * DNS name (wildcards as in HTTPS) or an IP address. Undefined when it matches.
 */
export function certificateNameProblem(
  certificate: X509Certificate | PeerCertificate,
  host: string,
): string | undefined {
  const san =
    certificate instanceof X509Certificate
      ? certificate.subjectAltName
      : (certificate as { subjectaltname?: string }).subjectaltname;
  if (!san) {
    return `the certificate has no subjectAltName; it needs ${isIP(host) ? 'IP' : 'DNS'}:${host}`;
  }
  const error = checkServerIdentity(host, {
    subject: {},
    subjectaltname: san,
  } as unknown as PeerCertificate);
  return error ? `the certificate is for ${san}, not for ${host}` : undefined;
}

/** The host part of a node name (`app@10.0.1.5` → `10.0.1.5`). */
export function nodeNameHost(name: string): string {
  const host = name.slice(name.indexOf('@') + 1);
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A certificate subject or issuer on one line (`CN=node-a, O=acme`). */
export function oneLine(name: string | undefined): string {
  return (name ?? '').split('\n').filter(Boolean).join(', ') || '(empty)';
}

function certificates(pem: Buffer): X509Certificate[] {
  const list: X509Certificate[] = [];
  for (const block of pem.toString('latin1').match(PEM_CERT) ?? []) {
    try {
      list.push(new X509Certificate(block));
    } catch {
      break;
    }
  }
  return list;
}

/** True when `leaf` is issued by a CA, directly or through the intermediates after it. */
function chainsTo(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  cas: readonly X509Certificate[],
): boolean {
  let current = leaf;
  for (let depth = 0; depth <= intermediates.length; depth++) {
    if (cas.some((ca) => issuedBy(current, ca))) return true;
    const next = intermediates.find((i) => i !== current && issuedBy(current, i));
    if (!next) return false;
    current = next;
  }
  return false;
}

function issuedBy(certificate: X509Certificate, ca: X509Certificate): boolean {
  try {
    return certificate.checkIssued(ca) && certificate.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function describeReadError(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied for the user running the app';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return 'check the path and its permissions';
  }
}
