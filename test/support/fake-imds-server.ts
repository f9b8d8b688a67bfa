import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How the fake metadata service behaves:
 * - `v2`: tokens offered, requests without a token also answered (`HttpTokens=optional`);
 * - `v2-required`: requests without a valid token get 401 (`HttpTokens=required`);
 * - `v1-only`: the token request is refused with `tokenRefusalStatus` (an old IMDS or a proxy);
 * - `token-dropped`: the token request is never answered, metadata requests without a token
 *   are (a container behind `HttpPutResponseHopLimit` 1 with `HttpTokens=optional`);
 * - `outage`: every connection is reset before an answer;
 * - `hang`: requests are accepted and never answered.
 */
export type FakeImdsMode = 'v2' | 'v2-required' | 'v1-only' | 'token-dropped' | 'outage' | 'hang';

export interface FakeImdsRequest {
  readonly method: string;
  readonly path: string;
  /** Value of `x-aws-ec2-metadata-token`, if sent. */
  readonly token: string | undefined;
  /** Value of `x-aws-ec2-metadata-token-ttl-seconds`, if sent. */
  readonly ttlSeconds: string | undefined;
}

export interface FakeImdsOptions {
  mode?: FakeImdsMode;
  instanceId?: string;
  region?: string;
  localIpv4?: string;
  /** Status of the refused token request in `v1-only` mode. @default 403 */
  tokenRefusalStatus?: 403 | 404 | 405;
}

/**
 * An EC2 instance metadata service on 127.0.0.1 speaking the IMDS HTTP API: `PUT
 * /latest/api/token` (with `x-aws-ec2-metadata-token-ttl-seconds`) issues a session token,
 * `GET /latest/meta-data/<path>` answers plain text. Point the SDK at it with
 * `AWS_EC2_METADATA_SERVICE_ENDPOINT=server.url`.
 */
export class FakeImdsServer {
  mode: FakeImdsMode;
  tokenRefusalStatus: 403 | 404 | 405;
  readonly metadata: Record<string, string>;
  readonly requests: FakeImdsRequest[] = [];
  private readonly tokens = new Set<string>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    options: FakeImdsOptions,
  ) {
    this.mode = options.mode ?? 'v2';
    this.tokenRefusalStatus = options.tokenRefusalStatus ?? 403;
    this.metadata = {
      'instance-id': options.instanceId ?? 'i-0123456789abcdef0',
      'placement/region': options.region ?? 'eu-west-1',
      'local-ipv4': options.localIpv4 ?? '10.0.1.5',
      'placement/availability-zone': `${options.region ?? 'eu-west-1'}a`,
    };
  }

  static async start(options: FakeImdsOptions = {}): Promise<FakeImdsServer> {
    const server = createServer();
    const fake = new FakeImdsServer(server, options);
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
      if (fake.mode === 'outage') socket.destroy();
    });
    server.on('request', (req, res) => fake.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  /** `http://127.0.0.1:<port>`, the value for `AWS_EC2_METADATA_SERVICE_ENDPOINT`. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Every request received, token endpoint included. */
  get requestCount(): number {
    return this.requests.length;
  }

  /** Requests that reached the metadata paths (not the token endpoint). */
  metadataRequests(): FakeImdsRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/latest/meta-data/'));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const header = (name: string): string | undefined => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const token = header('x-aws-ec2-metadata-token');
    const ttlSeconds = header('x-aws-ec2-metadata-token-ttl-seconds');
    this.requests.push({ method: req.method ?? '', path, token, ttlSeconds });
    req.resume();
    if (this.mode === 'hang') return;
    if (this.mode === 'outage') {
      req.socket.destroy();
      return;
    }

    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return send(res, 405, '');
      if (this.mode === 'v1-only') return send(res, this.tokenRefusalStatus, '');
      if (this.mode === 'token-dropped') return;
      const ttl = Number(ttlSeconds);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return send(res, 400, '');
      const issued = randomBytes(24).toString('base64');
      this.tokens.add(issued);
      res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
      return send(res, 200, issued);
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, '');
    if (token !== undefined && !this.tokens.has(token)) return send(res, 401, '');
    if (token === undefined && this.mode === 'v2-required') return send(res, 401, '');
    const prefix = '/latest/meta-data/';
    if (!path.startsWith(prefix)) return send(res, 404, notFound());
    const value = this.metadata[path.slice(prefix.length)];
    if (value === undefined) return send(res, 404, notFound());
    return send(res, 200, value);
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function notFound(): string {
  return '<?xml version="1.0" encoding="iso-8859-1"?>\n<title>404 - Not Found</title>';
}
