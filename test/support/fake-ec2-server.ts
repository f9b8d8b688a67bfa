import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One instance the fake EC2 knows. */
export interface FakeInstance {
  instanceId: string;
  privateIpAddress?: string;
  /** Public IPv4 address (`ipAddress` in the XML). */
  ipAddress?: string;
  /** @default 'running' */
  state?: 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';
  tags?: Record<string, string>;
  /** Instances with the same reservation id are listed in one `reservationSet` item. */
  reservationId?: string;
}

/**
 * A fault answered instead of the normal response:
 * `throttle` → 503 `RequestLimitExceeded`; `unauthorized` → 403 `UnauthorizedOperation`;
 * `auth-failure` → 401 `AuthFailure`; `internal` → 500 `InternalError`;
 * `hang` → the request is never answered; `reset` → the connection is destroyed.
 */
export type FakeEc2Fault =
  'throttle' | 'unauthorized' | 'auth-failure' | 'internal' | 'hang' | 'reset';

export interface FakeEc2Filter {
  readonly name: string;
  readonly values: readonly string[];
}

/** What the server received, parsed from the form-encoded EC2 Query request. */
export interface FakeEc2Request {
  readonly action: string;
  readonly version: string;
  readonly filters: readonly FakeEc2Filter[];
  readonly instanceIds: readonly string[];
  readonly nextToken: string | undefined;
  readonly maxResults: number | undefined;
  /** Access key id from the SigV4 `Authorization` header. */
  readonly accessKeyId: string | undefined;
  /** Region from the SigV4 credential scope. */
  readonly region: string | undefined;
  /** The fault answered, if any. */
  readonly fault: FakeEc2Fault | undefined;
}

const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const STATE_CODES: Record<NonNullable<FakeInstance['state']>, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/**
 * An EC2 endpoint on 127.0.0.1 speaking the EC2 Query API the real AWS SDK uses: POST
 * form-encoded `Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=...`, answered with
 * the documented XML (`DescribeInstancesResponse` / `reservationSet` / `instancesSet`),
 * paged with `nextToken`, errors in EC2's `<Response><Errors>` shape with the right status.
 * Point the SDK at it with `AWS_ENDPOINT_URL_EC2=server.url` (or the client's `endpoint`).
 *
 * Supported filters: `tag:<key>`, `tag-key`, `instance-state-name`, `instance-id`; any other
 * filter is rejected with `InvalidParameterValue`, as EC2 does.
 */
export class FakeEc2Server {
  instances: FakeInstance[] = [];
  /** Instances per page; `MaxResults` lowers it further. */
  pageSize: number;
  readonly requests: FakeEc2Request[] = [];
  private readonly faults: FakeEc2Fault[] = [];
  private persistentFault: FakeEc2Fault | null = null;
  private readonly sockets = new Set<Socket>();
  private server: Server;
  private port = 0;

  private constructor(options: { pageSize?: number; instances?: FakeInstance[] }) {
    this.pageSize = options.pageSize ?? 1000;
    this.instances = options.instances ?? [];
    this.server = this.createHttpServer();
  }

  static async start(
    options: { pageSize?: number; instances?: FakeInstance[] } = {},
  ): Promise<FakeEc2Server> {
    const fake = new FakeEc2Server(options);
    await fake.listen();
    return fake;
  }

  /** `http://127.0.0.1:<port>`, the value for `AWS_ENDPOINT_URL_EC2`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Answers the next `count` requests with `fault`, then behaves normally again. */
  failNext(fault: FakeEc2Fault, count = 1): void {
    for (let i = 0; i < count; i++) this.faults.push(fault);
  }

  /** Answers every request with `fault` until called with `null`. */
  failAll(fault: FakeEc2Fault | null): void {
    this.persistentFault = fault;
  }

  /** Requests of one action. */
  requestsOf(action: string): FakeEc2Request[] {
    return this.requests.filter((r) => r.action === action);
  }

  /** Stops listening and drops every connection: clients see the network down. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again on the same port after `stop()`. */
  async restart(): Promise<void> {
    this.server = this.createHttpServer();
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    if (this.server.listening) await this.stop();
    else for (const socket of this.sockets) socket.destroy();
  }

  private createHttpServer(): Server {
    const server = createServer((req, res) => this.onRequest(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return server;
  }

  private async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.handle(req, res, body);
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const params = new URLSearchParams(body);
    const fault = this.faults.shift() ?? this.persistentFault ?? undefined;
    const auth = req.headers.authorization ?? '';
    const scope = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/ec2\/aws4_request/.exec(auth);
    const maxResultsRaw = params.get('MaxResults');
    const request: FakeEc2Request = {
      action: params.get('Action') ?? '',
      version: params.get('Version') ?? '',
      filters: parseFilters(params),
      instanceIds: indexedValues(params, 'InstanceId'),
      nextToken: params.get('NextToken') ?? undefined,
      maxResults: maxResultsRaw === null ? undefined : Number(maxResultsRaw),
      accessKeyId: scope?.[1],
      region: scope?.[2],
      fault,
    };
    this.requests.push(request);

    switch (fault) {
      case 'hang':
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'throttle':
        return sendError(res, 503, 'RequestLimitExceeded', 'Request limit exceeded.');
      case 'unauthorized':
        return sendError(
          res,
          403,
          'UnauthorizedOperation',
          'You are not authorized to perform this operation.',
        );
      case 'auth-failure':
        return sendError(
          res,
          401,
          'AuthFailure',
          'AWS was not able to validate the provided access credentials',
        );
      case 'internal':
        return sendError(res, 500, 'InternalError', 'An internal error has occurred.');
      case undefined:
        break;
    }

    if (req.method !== 'POST') return sendError(res, 400, 'InvalidAction', 'Use POST.');
    if (request.accessKeyId === undefined) {
      return sendError(
        res,
        401,
        'AuthFailure',
        'AWS was not able to validate the provided access credentials',
      );
    }
    if (request.version !== '2016-11-15') {
      return sendError(
        res,
        400,
        'InvalidParameterValue',
        `Unsupported API version ${request.version}`,
      );
    }
    if (request.action === 'DescribeInstances') return this.describeInstances(res, request);
    return sendError(
      res,
      400,
      'InvalidAction',
      `The action ${request.action} is not valid for this web service.`,
    );
  }

  private describeInstances(res: ServerResponse, request: FakeEc2Request): void {
    if (request.maxResults !== undefined && (request.maxResults < 5 || request.maxResults > 1000)) {
      return sendError(
        res,
        400,
        'InvalidParameterValue',
        'Value for parameter maxResults is invalid.',
      );
    }
    let matching: FakeInstance[];
    try {
      matching = this.instances.filter(
        (i) =>
          request.filters.every((f) => matches(i, f)) &&
          (request.instanceIds.length === 0 || request.instanceIds.includes(i.instanceId)),
      );
    } catch (err) {
      return sendError(res, 400, 'InvalidParameterValue', (err as Error).message);
    }
    let offset = 0;
    if (request.nextToken !== undefined) {
      const decoded = Number(Buffer.from(request.nextToken, 'base64url').toString('utf8'));
      if (!Number.isInteger(decoded) || decoded < 0) {
        return sendError(res, 400, 'InvalidParameterValue', 'The nextToken is invalid.');
      }
      offset = decoded;
    }
    const size = Math.min(this.pageSize, request.maxResults ?? Number.POSITIVE_INFINITY);
    const page = matching.slice(offset, offset + size);
    const next =
      offset + size < matching.length
        ? Buffer.from(String(offset + size)).toString('base64url')
        : null;

    const reservations = new Map<string, FakeInstance[]>();
    for (const instance of page) {
      const id = instance.reservationId ?? `r-${instance.instanceId.replace(/^i-/, '')}`;
      reservations.set(id, [...(reservations.get(id) ?? []), instance]);
    }
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="${XMLNS}">` +
      `<requestId>${randomUUID()}</requestId><reservationSet>` +
      [...reservations]
        .map(
          ([reservationId, instances]) =>
            `<item><reservationId>${reservationId}</reservationId><ownerId>123456789012</ownerId>` +
            `<groupSet/><instancesSet>${instances.map(instanceXml).join('')}</instancesSet></item>`,
        )
        .join('') +
      `</reservationSet>${next === null ? '' : `<nextToken>${next}</nextToken>`}</DescribeInstancesResponse>`;
    res.writeHead(200, {
      'content-type': 'text/xml;charset=UTF-8',
      'content-length': Buffer.byteLength(xml),
    });
    res.end(xml);
  }
}

function indexedValues(params: URLSearchParams, prefix: string): string[] {
  const values: string[] = [];
  for (let n = 1; params.has(`${prefix}.${n}`); n++) values.push(params.get(`${prefix}.${n}`)!);
  return values;
}

function parseFilters(params: URLSearchParams): FakeEc2Filter[] {
  const filters: FakeEc2Filter[] = [];
  for (let n = 1; params.has(`Filter.${n}.Name`); n++) {
    filters.push({
      name: params.get(`Filter.${n}.Name`)!,
      values: indexedValues(params, `Filter.${n}.Value`),
    });
  }
  return filters;
}

function matches(instance: FakeInstance, filter: FakeEc2Filter): boolean {
  const tags = instance.tags ?? {};
  if (filter.name.startsWith('tag:')) {
    const value = tags[filter.name.slice('tag:'.length)];
    return value !== undefined && filter.values.includes(value);
  }
  switch (filter.name) {
    case 'tag-key':
      return filter.values.some((key) => key in tags);
    case 'instance-state-name':
      return filter.values.includes(instance.state ?? 'running');
    case 'instance-id':
      return filter.values.includes(instance.instanceId);
    default:
      throw new Error(`The filter '${filter.name}' is invalid`);
  }
}

function instanceXml(i: FakeInstance): string {
  const state = i.state ?? 'running';
  const tags = Object.entries(i.tags ?? {});
  return (
    `<item><instanceId>${esc(i.instanceId)}</instanceId><imageId>ami-0abcdef1234567890</imageId>` +
    `<instanceState><code>${STATE_CODES[state]}</code><name>${state}</name></instanceState>` +
    (i.privateIpAddress ? `<privateIpAddress>${esc(i.privateIpAddress)}</privateIpAddress>` : '') +
    (i.ipAddress ? `<ipAddress>${esc(i.ipAddress)}</ipAddress>` : '') +
    `<instanceType>t3.micro</instanceType>` +
    (tags.length === 0
      ? ''
      : `<tagSet>${tags.map(([k, v]) => `<item><key>${esc(k)}</key><value>${esc(v)}</value></item>`).join('')}</tagSet>`) +
    `</item>`
  );
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code>` +
    `<Message>${esc(message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`;
  res.writeHead(status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': Buffer.byteLength(xml),
  });
  res.end(xml);
}

function esc(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
