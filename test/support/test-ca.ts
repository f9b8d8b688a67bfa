import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Files of one issued certificate. */
export interface IssuedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

/** How a certificate is issued. */
export interface IssueOptions {
  /** subjectAltName entries, e.g. `['IP:127.0.0.2', 'DNS:node-a.internal']`. */
  readonly san: readonly string[];
  /** Common name. @default the first SAN value */
  readonly cn?: string;
  /** Validity as `openssl ca` dates (YYYYMMDDHHMMSSZ). @default from now for 2 days */
  readonly startDate?: string;
  readonly endDate?: string;
  /** File name stem inside the CA's directory. @default a counter */
  readonly stem?: string;
}

let counter = 0;

/**
 * A throw-away certificate authority for tests, made with the `openssl` CLI in a temp
 * directory (EC P-256 keys): `issue()` signs node certificates with the SANs, validity and
 * name asked for (`openssl ca`, so an already expired certificate can be made too).
 * `close()` removes the directory.
 */
export class TestCa {
  readonly dir: string;
  readonly caFile: string;
  private readonly caKey: string;
  private readonly config: string;

  constructor(readonly name = 'test-ca') {
    this.dir = mkdtempSync(join(tmpdir(), `${name}-`));
    this.caFile = join(this.dir, 'ca.crt');
    this.caKey = join(this.dir, 'ca.key');
    this.config = join(this.dir, 'ca.cnf');
    mkdirSync(join(this.dir, 'issued'));
    writeFileSync(join(this.dir, 'index.txt'), '');
    writeFileSync(join(this.dir, 'serial'), '1000\n');
    writeFileSync(
      this.config,
      [
        '[ca]',
        'default_ca = test',
        '[test]',
        `dir = ${this.dir}`,
        'database = $dir/index.txt',
        'serial = $dir/serial',
        'new_certs_dir = $dir/issued',
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        'copy_extensions = none',
        '[any]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    this.openssl(
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      this.caKey,
      '-out',
      this.caFile,
      '-days',
      '3',
      '-subj',
      `/CN=${name}`,
    );
  }

  /** Issues a certificate and its key; returns the two file paths. */
  issue(options: IssueOptions): IssuedCertificate {
    const stem = options.stem ?? `node-${++counter}`;
    const keyFile = join(this.dir, `${stem}.key`);
    const csr = join(this.dir, `${stem}.csr`);
    const certFile = join(this.dir, `${stem}.crt`);
    const ext = join(this.dir, `${stem}.ext`);
    const cn = options.cn ?? options.san[0]?.replace(/^[A-Z]+:/, '') ?? stem;
    writeFileSync(
      ext,
      [
        `subjectAltName = ${options.san.join(', ')}`,
        'basicConstraints = CA:FALSE',
        'keyUsage = digitalSignature',
        'extendedKeyUsage = serverAuth, clientAuth',
        '',
      ].join('\n'),
    );
    this.openssl('req', ...EC_KEY, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${cn}`);
    const now = new Date();
    const later = new Date(now.getTime() + 2 * 86_400_000);
    const before = new Date(now.getTime() - 60_000);
    this.openssl(
      'ca',
      '-batch',
      '-notext',
      '-config',
      this.config,
      '-cert',
      this.caFile,
      '-keyfile',
      this.caKey,
      '-in',
      csr,
      '-out',
      certFile,
      '-extfile',
      ext,
      '-startdate',
      options.startDate ?? opensslDate(before),
      '-enddate',
      options.endDate ?? opensslDate(later),
    );
    return { certFile, keyFile };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** `YYYYMMDDHHMMSSZ`, as `openssl ca -startdate/-enddate` take it. */
export function opensslDate(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}
