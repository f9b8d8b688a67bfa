import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One endpoint of a fake EndpointSlice, as `discovery.k8s.io/v1` spells it. */
export interface FakeSliceEndpoint {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  hostname?: string;
  pod?: string;
}

/** One request the stand-in answered. */
export interface FakeKubeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly token: string | undefined;
  readonly status: number;
  readonly watch: boolean;
}

type Kind = 'endpointslices' | 'pods';
/** A Kubernetes object as the fake API stores it: its metadata and any other fields. */
interface Obj {
  metadata: {
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

interface Watcher {
  readonly kind: Kind;
  readonly namespace: string;
  readonly selector: [string, string | null, boolean][];
  readonly res: ServerResponse;
  timer?: NodeJS.Timeout;
}

const GROUP_PATH: Record<Kind, RegExp> = {
  endpointslices: /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/,
  pods: /^\/api\/v1\/namespaces\/([^/]+)\/pods$/,
};

/**
 * A Kubernetes API server stand-in for tests: HTTPS on 127.0.0.1 with its own CA (made with
 * the `openssl` CLI at start, removed at close), bearer-token auth, and list + watch of
 * `discovery.k8s.io/v1` EndpointSlices and `v1` pods by label selector, with the wire
 * behaviour of the real one: one JSON event per line (`ADDED`/`MODIFIED`/`DELETED`/
 * `BOOKMARK`), `resourceVersion` resume, an `ERROR` event with a 410 `Status` for a compacted
 * resource version, `timeoutSeconds`, 401/403/400 `Status` bodies. Listing in a namespace
 * that does not exist answers an empty list, as the real API server does.
 *
 * `serviceAccountDir` holds `token`, `ca.crt` and `namespace` as a pod's mount would; pass it
 * as `LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH`.
 *
 * Label selectors supported: comma-separated `k=v`, `k==v`, `k!=v`, `k`; anything else is a
 * 400 as a parse error.
 */
export class FakeKubeApi {
  readonly serviceAccountDir: string;
  readonly requests: FakeKubeRequest[] = [];
  /** Verbs answered 403. */
  readonly forbidden = new Set<'list' | 'watch'>();
  /** When true, watch requests get their headers and then nothing, ever (a stalled stream). */
  stall = false;
  private token: string;
  private revision = 1;
  /** Watches resuming from below this resource version get a 410. */
  private compactedBelow = 0;
  private readonly objects: Record<Kind, Map<string, Obj>> = {
    endpointslices: new Map(),
    pods: new Map(),
  };
  private readonly history: { kind: Kind; type: string; object: Obj; rv: number }[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  private certDir!: string;
  port = 0;

  private constructor(
    readonly namespace: string,
    token: string,
    readonly serviceAccount: string,
  ) {
    this.token = token;
    this.serviceAccountDir = mkdtempSync(join(tmpdir(), 'fake-kube-sa-'));
  }

  static async start(
    options: { namespace?: string; token?: string; serviceAccount?: string } = {},
  ): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(
      options.namespace ?? 'default',
      options.token ?? 'token-1',
      options.serviceAccount ?? 'myapp',
    );
    api.makeCertificates();
    writeFileSync(join(api.serviceAccountDir, 'ca.crt'), readFileSync(join(api.certDir, 'ca.crt')));
    writeFileSync(join(api.serviceAccountDir, 'namespace'), api.namespace);
    writeFileSync(join(api.serviceAccountDir, 'token'), api.token);
    api.server = createServer(
      {
        key: readFileSync(join(api.certDir, 'server.key')),
        cert: readFileSync(join(api.certDir, 'server.crt')),
      },
      (req, res) => api.handle(req, res),
    );
    api.server.on('connection', (socket: Socket) => {
      api.sockets.add(socket);
      socket.once('close', () => api.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    api.port = (api.server.address() as AddressInfo).port;
    return api;
  }

  /** Environment of a node that reaches this stand-in as its API server. */
  env(): Record<string, string> {
    return {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(this.port),
      LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH: this.serviceAccountDir,
    };
  }

  /** Creates or replaces an EndpointSlice (watchers get ADDED or MODIFIED). */
  setSlice(
    name: string,
    labels: Record<string, string>,
    endpoints: FakeSliceEndpoint[],
    namespace = this.namespace,
  ): void {
    const object: Obj = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace, labels, resourceVersion: '' },
      addressType: 'IPv4',
      endpoints: endpoints.map((e) => ({
        addresses: [e.ip],
        conditions: {
          ...(e.ready === undefined ? {} : { ready: e.ready }),
          ...(e.serving === undefined ? {} : { serving: e.serving }),
          ...(e.terminating === undefined ? {} : { terminating: e.terminating }),
        },
        ...(e.hostname ? { hostname: e.hostname } : {}),
        targetRef: { kind: 'Pod', name: e.pod ?? `pod-${e.ip.replace(/\./g, '-')}`, namespace },
      })),
      ports: [{ name: 'cluster', port: 45893, protocol: 'TCP' }],
    };
    this.put('endpointslices', name, object);
  }

  /** Creates or replaces a pod. */
  setPod(
    name: string,
    labels: Record<string, string>,
    status: {
      ip?: string;
      phase?: string;
      ready?: boolean;
      deleting?: boolean;
      hostname?: string;
      subdomain?: string;
    },
    namespace = this.namespace,
  ): void {
    const object: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        labels,
        resourceVersion: '',
        ...(status.deleting ? { deletionTimestamp: new Date().toISOString() } : {}),
      },
      spec: {
        ...(status.hostname ? { hostname: status.hostname } : {}),
        ...(status.subdomain ? { subdomain: status.subdomain } : {}),
      },
      status: {
        phase: status.phase ?? 'Running',
        ...(status.ip ? { podIP: status.ip } : {}),
        conditions: [{ type: 'Ready', status: status.ready === false ? 'False' : 'True' }],
      },
    };
    this.put('pods', name, object);
  }

  /** Deletes an object (watchers get DELETED). */
  remove(kind: Kind, name: string): void {
    const object = this.objects[kind].get(name);
    if (!object) return;
    this.objects[kind].delete(name);
    const rv = ++this.revision;
    const gone = { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } };
    this.emit(kind, 'DELETED', gone, rv);
  }

  /**
   * Replaces the token file (atomically, as the kubelet does) with `token`; from now on only
   * the new token is accepted and open watches are closed (they were authenticated with the
   * old one).
   */
  rotateToken(token: string): void {
    const tmp = join(this.serviceAccountDir, '.token.tmp');
    writeFileSync(tmp, token);
    renameSync(tmp, join(this.serviceAccountDir, 'token'));
    this.token = token;
    this.closeWatches();
  }

  /** Compacts the history: every open watch gets an ERROR 410 event, and so does any resume from before now. */
  expireResourceVersions(): void {
    this.compactedBelow = this.revision + 1;
    for (const w of [...this.watchers]) {
      this.writeEvent(w, { type: 'ERROR', object: gone(this.revision) });
      this.endWatch(w);
    }
  }

  /** Writes `text` (not a watch event) into every open watch stream. */
  sendGarbage(text = 'this is not json\n'): void {
    for (const w of this.watchers) w.res.write(text);
  }

  /** Number of watch streams open now. */
  openWatches(): number {
    return this.watchers.size;
  }

  /** Ends every open watch stream normally. */
  closeWatches(): void {
    for (const w of [...this.watchers]) this.endWatch(w);
  }

  /** Requests that were watches (or lists) of `kind`. */
  requestsOf(kind: Kind, watch?: boolean): FakeKubeRequest[] {
    return this.requests.filter(
      (r) => GROUP_PATH[kind].test(r.path) && (watch === undefined || r.watch === watch),
    );
  }

  async close(): Promise<void> {
    this.closeWatches();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.serviceAccountDir, { recursive: true, force: true });
    rmSync(this.certDir, { recursive: true, force: true });
  }

  private makeCertificates(): void {
    this.certDir = mkdtempSync(join(tmpdir(), 'fake-kube-ca-'));
    const run = (...args: string[]) =>
      execFileSync('openssl', args, { cwd: this.certDir, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    run(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=fake-kube-ca',
    );
    run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver');
    writeFileSync(join(this.certDir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    run(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'san.ext',
    );
  }

  private put(kind: Kind, name: string, object: Obj): void {
    const existed = this.objects[kind].has(name);
    const rv = ++this.revision;
    object.metadata.resourceVersion = String(rv);
    this.objects[kind].set(name, object);
    this.emit(kind, existed ? 'MODIFIED' : 'ADDED', object, rv);
  }

  private emit(kind: Kind, type: string, object: Obj, rv: number): void {
    this.history.push({ kind, type, object, rv });
    if (this.history.length > 10_000) this.history.shift();
    for (const w of this.watchers) {
      if (
        w.kind === kind &&
        object.metadata.namespace === w.namespace &&
        matches(w.selector, object.metadata.labels ?? {})
      ) {
        if (!this.stall) this.writeEvent(w, { type, object });
      }
    }
  }

  private writeEvent(w: Watcher, event: { type: string; object: Obj }): void {
    w.res.write(`${JSON.stringify(event)}\n`);
  }

  private endWatch(w: Watcher): void {
    clearTimeout(w.timer);
    this.watchers.delete(w);
    w.res.end();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const isWatch =
      url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true';
    const record = (status: number) =>
      this.requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        token,
        status,
        watch: isWatch,
      });
    const fail = (
      status: number,
      reason: string,
      message: string,
      details?: Record<string, unknown>,
    ) => {
      record(status);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message,
          reason,
          code: status,
          ...(details ? { details } : {}),
        }),
      );
    };
    if (token !== this.token) return fail(401, 'Unauthorized', 'Unauthorized');
    let kind: Kind | undefined;
    let namespace = '';
    for (const k of Object.keys(GROUP_PATH) as Kind[]) {
      const m = GROUP_PATH[k].exec(url.pathname);
      if (m) {
        kind = k;
        namespace = decodeURIComponent(m[1]);
      }
    }
    if (req.method !== 'GET' || !kind)
      return fail(404, 'NotFound', 'the server could not find the requested resource');
    const verb = isWatch ? 'watch' : 'list';
    if (this.forbidden.has(verb)) {
      const group = kind === 'pods' ? '""' : '"discovery.k8s.io"';
      return fail(
        403,
        'Forbidden',
        `${kind}${kind === 'pods' ? '' : '.discovery.k8s.io'} is forbidden: User "system:serviceaccount:${this.namespace}:${this.serviceAccount}" cannot ${verb} resource "${kind}" in API group ${group} in the namespace "${namespace}"`,
        { kind },
      );
    }
    const selector = parseSelector(url.searchParams.get('labelSelector') ?? '');
    if (!selector) {
      return fail(
        400,
        'BadRequest',
        `unable to parse requirement: ${JSON.stringify(url.searchParams.get('labelSelector'))}`,
      );
    }
    const selected = (o: Obj) =>
      o.metadata.namespace === namespace && matches(selector, o.metadata.labels ?? {});
    if (!isWatch) {
      record(200);
      const items = [...this.objects[kind].values()].filter(selected);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: kind === 'pods' ? 'PodList' : 'EndpointSliceList',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.revision) },
          items,
        }),
      );
      return;
    }
    record(200);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const watcher: Watcher = { kind, namespace, selector, res };
    this.watchers.add(watcher);
    res.once('close', () => {
      clearTimeout(watcher.timer);
      this.watchers.delete(watcher);
    });
    if (this.stall) return;
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    if (from > 0 && from < this.compactedBelow - 1) {
      this.writeEvent(watcher, { type: 'ERROR', object: gone(from) });
      this.endWatch(watcher);
      return;
    }
    for (const h of this.history) {
      if (h.kind === kind && h.rv > from && selected(h.object))
        this.writeEvent(watcher, { type: h.type, object: h.object });
    }
    const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    if (timeoutSeconds > 0) {
      watcher.timer = setTimeout(() => this.endWatch(watcher), timeoutSeconds * 1000);
      watcher.timer.unref();
    }
  }
}

function gone(rv: number): Obj {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `too old resource version: ${rv}`,
    reason: 'Expired',
    code: 410,
  };
}

/** `[key, value | null, negated]` requirements, or undefined when the selector does not parse. */
function parseSelector(selector: string): [string, string | null, boolean][] | undefined {
  const out: [string, string | null, boolean][] = [];
  if (selector.trim() === '') return out;
  for (const part of selector.split(',')) {
    const m = /^\s*([A-Za-z0-9./_-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*))?\s*$/.exec(part);
    if (!m) return undefined;
    out.push([m[1], m[2] === undefined ? null : m[3], m[2] === '!=']);
  }
  return out;
}

function matches(
  selector: [string, string | null, boolean][],
  labels: Record<string, string>,
): boolean {
  return selector.every(([key, value, negated]) => {
    if (value === null) return key in labels;
    return negated ? labels[key] !== value : labels[key] === value;
  });
}
