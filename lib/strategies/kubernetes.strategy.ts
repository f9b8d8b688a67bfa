import { isIP } from 'node:net';
import { ClusterError } from '../errors/cluster.error.js';
import { KubernetesDiscoveryError } from '../errors/kubernetes-discovery.error.js';
import type { KubernetesStrategyOptions } from '../interfaces/strategy-options.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import {
  DEFAULT_SERVICE_ACCOUNT_PATH,
  KubeApiClient,
  type KubeApiAnswer,
  type KubeWatchEvent,
} from './kubernetes/kube-api-client.js';
import type { ClusterStrategy, DiscoveredEndpoint, StrategyContext } from './strategy.interface.js';

/** Constructor options: the topology's {@link KubernetesStrategyOptions} plus what the core supplies. */
export interface KubernetesStrategyConfig extends KubernetesStrategyOptions {
  /** Link port of every discovered pod (`CLUSTER_PORT`, the same on every node). */
  clusterPort: number;
  /** Deadline of one list request, ms. @default 10000 */
  requestTimeoutMs?: number;
  /** Server-side duration of one watch request (`timeoutSeconds`), s. @default 300 */
  watchTimeoutSeconds?: number;
  /** A watch stream silent this long is stalled: it is dropped and the list read again, ms. @default watchTimeoutSeconds · 1000 + 30000 */
  watchIdleTimeoutMs?: number;
  /** Upper bound of the retry delay after failed requests, ms. @default 30000 */
  maxBackoffMs?: number;
  /** More discovered pods than this is treated as a wrong selector (the set is not handed over). @default 5000 */
  maxEndpoints?: number;
  /** Largest list answer accepted, bytes. @default 64 MiB */
  maxResponseBytes?: number;
  /** Environment seam for `KUBERNETES_SERVICE_HOST` / `_PORT`. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/** A list answers in milliseconds; 10 s means the API server is unreachable. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Five minutes per watch request, as kubectl and client-go informers use (300–600 s). */
const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** Failed requests back off up to 30 s: a broken API server is not hammered, a fix is seen soon. */
const DEFAULT_MAX_BACKOFF_MS = 30_000;
/** First retry delay after a failure. */
const BASE_BACKOFF_MS = 500;
/** A full mesh beyond a few thousand nodes is not what this module is for; more means a wrong selector. */
const DEFAULT_MAX_ENDPOINTS = 5000;
/** Room for thousands of pods with all their status fields. */
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** The discovery.k8s.io/v1 API limit: an EndpointSlice holds at most 1000 endpoints. */
const MAX_ENDPOINTS_PER_SLICE = 1000;
/** Watch failures in a row after which the list is polled for a while instead. */
const WATCH_FAILURES_BEFORE_POLLING = 3;
/** Polls of the list before the watch is tried again. */
const POLL_FALLBACK_ROUNDS = 12;
/** libcluster's polling interval. */
const DEFAULT_POLLING_INTERVAL_MS = 5000;

/** The list/watch target of one lookup mode, and the RBAC rule it needs. */
interface Resource {
  readonly what: string;
  readonly apiGroup: string;
  readonly resource: string;
  readonly path: (namespace: string) => string;
}

const RESOURCES: Record<'endpoints' | 'pods', Resource> = {
  endpoints: {
    what: 'EndpointSlices',
    apiGroup: 'discovery.k8s.io',
    resource: 'endpointslices',
    path: (ns) => `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/endpointslices`,
  },
  pods: {
    what: 'pods',
    apiGroup: '',
    resource: 'pods',
    path: (ns) => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`,
  },
};

/** Thrown inside the loop when the API says the resource version is too old (410 Gone). */
class ResourceVersionGone extends Error {}

type Obj = Record<string, unknown>;

/**
 * Discovers the app's pods through the Kubernetes API, like libcluster's
 * `Cluster.Strategy.Kubernetes` — with the fixes its users keep asking for: EndpointSlices
 * instead of the deprecated Endpoints API, a **watch** instead of polling, readiness taken
 * into account, any cluster domain, and an RBAC error that says which rule to add.
 *
 * At start it lists the objects that match `selector` in `namespace` and hands the core the
 * full set, then follows changes with a watch (`?watch=1&resourceVersion=…`), handing over
 * the full set again after every change — a pod added or removed is seen within the time
 * the API server takes to send the event, not at the next poll.
 *
 * - `ipLookupMode: 'endpoints'` (default) reads `discovery.k8s.io/v1` EndpointSlices: every
 *   slice of the selector merged (a Service with more than 100 pods has several), one
 *   endpoint per address. An endpoint counts when `conditions.ready` is true (unset counts as
 *   ready, as the API says; without `ready`, `serving` decides); with `includeNotReady` every
 *   endpoint counts unless `conditions.terminating` is true. The selector matches the
 *   slices' labels, which are the Service's labels plus `kubernetes.io/service-name`.
 * - `ipLookupMode: 'pods'` reads pods: running (or pending, with `includeNotReady`) pods with
 *   an IP whose `Ready` condition is true, and never a pod being deleted.
 *
 * Each discovered pod becomes `{ host: <pod ip>, port: clusterPort, name }` with the name's
 * host given by `mode` (`ip`, `dns`, `hostname`: see {@link KubernetesStrategyOptions.mode}).
 *
 * The API is reached at `KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT` over `https` with
 * the service account from `serviceAccountPath`: the token and `ca.crt` are read again for
 * every request (bound tokens rotate), the server certificate is verified against `ca.crt`,
 * and the namespace defaults to the service account's own. No Kubernetes client library.
 *
 * Failures keep the current members, log a warning (once a minute per kind) that says what to
 * fix and show in health: a 403 names the Role rule to add (`apiGroups`, `resources`,
 * `verbs`), a 401 or an unreadable token names the file, a 404 for the namespace names
 * `LIBCLUSTER_KUBERNETES_NAMESPACE`, a 400 names `LIBCLUSTER_KUBERNETES_SELECTOR`. Requests
 * are retried with capped, jittered backoff. A watch that answers `410 Gone` (its resource
 * version expired) is resynced by listing again, which loses nothing because the list is the
 * full state. A watch stream that sends garbage or stalls (`watchIdleTimeoutMs`) is dropped
 * and the list read again; after three watch failures in a row the strategy polls the list
 * every `pollingIntervalMs` for twelve rounds before it tries to watch again. A slice with
 * more endpoints than the API allows (1000), or more pods than `maxEndpoints`, is refused:
 * the previous set stays.
 *
 * Role the service account needs (endpoints mode; for pods mode: `apiGroups: [""]`,
 * `resources: ["pods"]`):
 * ```yaml
 * rules:
 *   - apiGroups: ["discovery.k8s.io"]
 *     resources: ["endpointslices"]
 *     verbs: ["list", "watch"]
 * ```
 *
 * Options (environment variables as libcluster names them):
 * - `selector` (`LIBCLUSTER_KUBERNETES_SELECTOR`), required unless `serviceName` is set in
 *   endpoints mode.
 * - `nodeBasename` (`LIBCLUSTER_KUBERNETES_NODE_BASENAME`): default the app name.
 * - `namespace` (`LIBCLUSTER_KUBERNETES_NAMESPACE`): default the service account's.
 * - `ipLookupMode` (`LIBCLUSTER_KUBERNETES_IP_LOOKUP_MODE`): `endpoints` (default) or `pods`.
 * - `mode` (`LIBCLUSTER_KUBERNETES_MODE`): `ip` (default), `dns` or `hostname`.
 * - `serviceName` (`LIBCLUSTER_KUBERNETES_SERVICE_NAME`): headless service of `hostname` names.
 * - `clusterDomain` (`LIBCLUSTER_KUBERNETES_CLUSTER_DOMAIN`): default `cluster.local`.
 * - `includeNotReady` (`LIBCLUSTER_KUBERNETES_INCLUDE_NOT_READY`): default false.
 * - `serviceAccountPath` (`LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH`): default
 *   `/var/run/secrets/kubernetes.io/serviceaccount`.
 * - `watch`: default true; false polls the list every `pollingIntervalMs` (default 5000).
 * - `apiHost`, `apiPort`, `requestTimeoutMs` (10000), `watchTimeoutSeconds` (300),
 *   `watchIdleTimeoutMs`, `maxBackoffMs` (30000), `maxEndpoints` (5000), `maxResponseBytes`.
 *
 * @example
 * ClusterModule.forRoot({
 *   cookie: process.env.NODE_COOKIE,
 *   strategy: 'kubernetes',
 *   strategyConfig: { selector: 'app=myapp', nodeBasename: 'myapp', includeNotReady: true },
 * });
 */
export class KubernetesStrategy implements ClusterStrategy {
  private readonly resource: Resource;
  private readonly selector: string;
  private readonly mode: 'ip' | 'dns' | 'hostname';
  private readonly clusterDomain: string;
  private readonly includeNotReady: boolean;
  private readonly watchEnabled: boolean;
  private readonly pollingIntervalMs: number;
  private readonly watchTimeoutSeconds: number;
  private readonly watchIdleTimeoutMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxEndpoints: number;
  private readonly client: KubeApiClient;
  private readonly apiAddress: string;

  private ctx: StrategyContext | undefined;
  private limited: RateLimitedLogger | undefined;
  private generation = 0;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private namespace: string | undefined;
  private resourceVersion = '';
  private readonly cache = new Map<string, Obj>();
  private lastSet: string | undefined;
  private failing = false;
  private setProblem: string | undefined;

  constructor(private readonly options: KubernetesStrategyConfig) {
    const env = options.env ?? process.env;
    const mode = options.ipLookupMode ?? 'endpoints';
    if (mode !== 'endpoints' && mode !== 'pods') {
      throw new ClusterError(
        `kubernetes strategy: ipLookupMode must be 'endpoints' or 'pods', got '${String(mode)}'`,
      );
    }
    this.resource = RESOURCES[mode];
    const selector =
      options.selector?.trim() ||
      (mode === 'endpoints' && options.serviceName
        ? `kubernetes.io/service-name=${options.serviceName}`
        : '');
    if (!selector) {
      throw new ClusterError(
        'kubernetes strategy: selector is required (LIBCLUSTER_KUBERNETES_SELECTOR)',
      );
    }
    this.selector = selector;
    this.mode = options.mode ?? 'ip';
    if (!['ip', 'dns', 'hostname'].includes(this.mode)) {
      throw new ClusterError(
        `kubernetes strategy: mode must be 'ip', 'dns' or 'hostname', got '${String(this.mode)}'`,
      );
    }
    const host = options.apiHost ?? env.KUBERNETES_SERVICE_HOST?.trim();
    if (!host) {
      throw new ClusterError(
        'kubernetes strategy: KUBERNETES_SERVICE_HOST is not set (the kubelet sets it in every pod; outside a pod set apiHost)',
      );
    }
    const port = options.apiPort ?? Number(env.KUBERNETES_SERVICE_PORT?.trim() || 443);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ClusterError(
        `kubernetes strategy: KUBERNETES_SERVICE_PORT is not a port: ${String(env.KUBERNETES_SERVICE_PORT)}`,
      );
    }
    this.apiAddress = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
    this.clusterDomain = (options.clusterDomain ?? 'cluster.local').replace(/^\.+|\.+$/g, '');
    this.includeNotReady = options.includeNotReady ?? false;
    this.watchEnabled = options.watch ?? true;
    this.pollingIntervalMs = options.pollingIntervalMs ?? DEFAULT_POLLING_INTERVAL_MS;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    this.watchIdleTimeoutMs =
      options.watchIdleTimeoutMs ?? this.watchTimeoutSeconds * 1000 + 30_000;
    this.maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    this.maxEndpoints = options.maxEndpoints ?? DEFAULT_MAX_ENDPOINTS;
    this.client = new KubeApiClient({
      host,
      port,
      serviceAccountPath: options.serviceAccountPath ?? DEFAULT_SERVICE_ACCOUNT_PATH,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      maxEventBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    });
  }

  /** Starts the list/watch loop in the background. */
  start(ctx: StrategyContext): void {
    this.stop();
    this.ctx = ctx;
    this.limited = new RateLimitedLogger(ctx.logger, 60_000);
    const generation = ++this.generation;
    this.abort = new AbortController();
    this.cache.clear();
    this.lastSet = undefined;
    this.failing = false;
    void this.run(generation);
  }

  /** Stops watching; aborts any request in flight. */
  stop(): void {
    this.generation++;
    this.abort?.abort();
    this.abort = undefined;
    this.wake?.();
    this.client.close();
  }

  private async run(generation: number): Promise<void> {
    const ctx = this.ctx!;
    const current = (): boolean => generation === this.generation;
    let failures = 0;
    let watchFailures = 0;
    let pollRounds = this.watchEnabled ? 0 : Infinity;
    let needList = true;
    /** A watch answered 403: once a list shows that listing is allowed, poll for a while. */
    let watchForbidden: KubernetesDiscoveryError | undefined;
    while (current()) {
      try {
        if (this.namespace === undefined) {
          this.namespace = this.options.namespace ?? (await this.client.namespace());
          if (!current()) return;
          ctx.logger.log(
            `watching ${this.resource.what} with labels ${this.selector} in namespace ${this.namespace} at ${this.apiAddress}` +
              (this.includeNotReady ? ' (not-ready pods included)' : ''),
          );
        }
        if (needList) {
          await this.list(generation);
          if (!current()) return;
          if (failures > 0 || this.failing) {
            ctx.logger.log(
              `Kubernetes discovery works again (${this.cache.size} ${this.resource.what})`,
            );
          }
          failures = 0;
          this.failing = false;
          this.publish(true);
          if (watchForbidden) {
            this.limited!.warn(
              'watch-forbidden',
              `${watchForbidden.message}; meanwhile the list is polled every ${this.pollingIntervalMs} ms`,
            );
            pollRounds = POLL_FALLBACK_ROUNDS;
            watchForbidden = undefined;
          }
        }
        if (pollRounds > 0) {
          if (pollRounds !== Infinity) pollRounds--;
          needList = true;
          await this.sleep(this.jitter(this.pollingIntervalMs), generation);
          continue;
        }
        needList = false;
        try {
          const events = await this.watch(generation);
          if (events > 0) watchFailures = 0;
        } catch (err) {
          if (!current()) return;
          if (err instanceof ResourceVersionGone) {
            ctx.logger.log(`watch of ${this.resource.what} expired (410 Gone): listing again`);
            needList = true;
            continue;
          }
          const error = this.describe(err, 'watch');
          if (error.failure === 'forbidden') {
            watchForbidden = error;
            needList = true;
            continue;
          }
          watchFailures++;
          needList = true;
          throw error;
        }
        if (watchFailures >= WATCH_FAILURES_BEFORE_POLLING) {
          ctx.logger.warn(
            `the watch of ${this.resource.what} failed ${watchFailures} times in a row; polling the list every ${this.pollingIntervalMs} ms for ${POLL_FALLBACK_ROUNDS} rounds`,
          );
          pollRounds = POLL_FALLBACK_ROUNDS;
          watchFailures = 0;
          needList = true;
        }
      } catch (err) {
        if (!current()) return;
        failures++;
        this.failing = true;
        watchForbidden = undefined;
        const error = err instanceof KubernetesDiscoveryError ? err : this.describe(err, 'list');
        if (error.failure === 'namespace') this.namespace = undefined;
        const delay = this.backoff(failures);
        this.limited!.warn(
          `fail:${error.failure}:${error.message}`,
          `Kubernetes discovery failed: ${error.message} (keeping the current members; retrying in ${Math.round(delay)} ms)`,
        );
        ctx.reportError(error);
        if (watchFailures >= WATCH_FAILURES_BEFORE_POLLING) {
          ctx.logger.warn(
            `the watch of ${this.resource.what} failed ${watchFailures} times in a row; polling the list every ${this.pollingIntervalMs} ms for ${POLL_FALLBACK_ROUNDS} rounds`,
          );
          pollRounds = POLL_FALLBACK_ROUNDS;
          watchFailures = 0;
        }
        await this.sleep(delay, generation);
      }
    }
  }

  private listPath(): string {
    return `${this.resource.path(this.namespace!)}?labelSelector=${encodeURIComponent(this.selector)}`;
  }

  /** Reads the full list; replaces the cache and the resource version. */
  private async list(generation: number): Promise<void> {
    const answer = await this.client.get(this.listPath(), this.abort?.signal);
    if (generation !== this.generation) return;
    if (answer.status < 200 || answer.status >= 300) throw this.answerError(answer, 'list');
    const body = answer.body as
      { items?: unknown; metadata?: { resourceVersion?: unknown } } | undefined;
    if (!body || typeof body !== 'object' || !Array.isArray(body.items)) {
      throw new KubernetesDiscoveryError(
        `the API server's answer to the list of ${this.resource.what} is not a list`,
        'invalid',
        `check KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT (${this.apiAddress}) point at the API server`,
      );
    }
    this.cache.clear();
    for (const item of body.items as Obj[]) {
      const name = nameOf(item);
      if (name !== undefined) this.cache.set(name, item);
    }
    this.resourceVersion =
      typeof body.metadata?.resourceVersion === 'string' ? body.metadata.resourceVersion : '';
  }

  /** One watch request from the current resource version; resolves with the number of events seen. */
  private async watch(generation: number): Promise<number> {
    const path =
      `${this.listPath()}&watch=1&allowWatchBookmarks=true&timeoutSeconds=${this.watchTimeoutSeconds}` +
      (this.resourceVersion ? `&resourceVersion=${encodeURIComponent(this.resourceVersion)}` : '');
    let events = 0;
    try {
      await this.client.watch(
        path,
        (event) => {
          if (generation !== this.generation) return;
          events++;
          this.onEvent(event);
        },
        this.watchIdleTimeoutMs,
        this.abort!.signal,
      );
    } catch (err) {
      const answer = (err as { answer?: KubeApiAnswer }).answer;
      if (answer?.status === 410) throw new ResourceVersionGone();
      if (answer) throw this.answerError(answer, 'watch');
      throw err;
    }
    return events;
  }

  private onEvent(event: KubeWatchEvent): void {
    const { type, object } = event;
    const rv = (object.metadata as Obj | undefined)?.resourceVersion;
    switch (type) {
      case 'BOOKMARK':
        if (typeof rv === 'string') this.resourceVersion = rv;
        return;
      case 'ERROR': {
        if ((object as { code?: unknown }).code === 410) throw new ResourceVersionGone();
        throw this.answerError(
          { status: Number((object as { code?: unknown }).code) || 0, body: object },
          'watch',
        );
      }
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        const name = nameOf(object);
        if (name === undefined) {
          throw Object.assign(
            new Error(`the watch stream sent a ${type} event without metadata.name`),
            { code: 'EWATCH' },
          );
        }
        if (type === 'DELETED') this.cache.delete(name);
        else this.cache.set(name, object);
        if (typeof rv === 'string') this.resourceVersion = rv;
        this.publish(false);
        return;
      }
      default:
        throw Object.assign(
          new Error(`the watch stream sent an unknown event type ${JSON.stringify(type)}`),
          {
            code: 'EWATCH',
          },
        );
    }
  }

  /**
   * Hands the current set to the core when it changed (always after a list). A set that
   * cannot be trusted (a slice over the API limit, too many pods) is not handed over: the
   * previous one stays, and the problem shows in health until a later change fixes it.
   */
  private publish(afterList: boolean): void {
    const ctx = this.ctx!;
    let endpoints: DiscoveredEndpoint[];
    try {
      endpoints = this.endpoints();
    } catch (err) {
      const error = err as KubernetesDiscoveryError;
      this.setProblem = error.message;
      this.limited!.warn(
        `set:${error.message}`,
        `Kubernetes discovery: ${error.message} (keeping the current members)`,
      );
      ctx.reportError(error);
      return;
    }
    const key = endpoints.map((e) => `${e.name}|${e.host}`).join(',');
    const changed = key !== this.lastSet;
    this.lastSet = key;
    if (ctx.debug && changed) {
      ctx.logger.debug?.(
        `${this.resource.what}: ${endpoints.map((e) => `${e.name} (${e.host})`).join(', ') || 'none'}`,
      );
    }
    if (afterList && endpoints.length === 0) {
      this.limited!.warn(
        'empty',
        `no ${this.includeNotReady ? '' : 'ready '}pods match ${this.selector} in namespace ${this.namespace} ` +
          `(check LIBCLUSTER_KUBERNETES_SELECTOR and LIBCLUSTER_KUBERNETES_NAMESPACE` +
          (this.includeNotReady
            ? ')'
            : '; not-ready pods count only with LIBCLUSTER_KUBERNETES_INCLUDE_NOT_READY=true)'),
      );
    }
    if (changed || afterList || this.setProblem !== undefined) ctx.connect(endpoints);
    this.setProblem = undefined;
    if (!this.failing) ctx.reportOk();
  }

  /** The discovered set from the cache, sorted and unique by IP. */
  private endpoints(): DiscoveredEndpoint[] {
    const found = new Map<string, DiscoveredEndpoint>();
    const add = (ip: string, name: string): void => {
      if (!found.has(ip)) found.set(ip, { host: ip, port: this.options.clusterPort, name });
    };
    for (const [objectName, object] of this.cache) {
      if (this.resource.resource === 'endpointslices') this.fromSlice(objectName, object, add);
      else this.fromPod(object, add);
    }
    if (found.size > this.maxEndpoints) {
      throw new KubernetesDiscoveryError(
        `${found.size} pods match ${this.selector}, more than maxEndpoints (${this.maxEndpoints})`,
        'invalid',
        'narrow LIBCLUSTER_KUBERNETES_SELECTOR to the app’s own pods',
      );
    }
    return [...found.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  }

  private fromSlice(sliceName: string, slice: Obj, add: (ip: string, name: string) => void): void {
    const addressType = slice.addressType;
    if (addressType !== undefined && addressType !== 'IPv4' && addressType !== 'IPv6') return; // FQDN slices
    const list = slice.endpoints ?? [];
    if (!Array.isArray(list)) return;
    if (list.length > MAX_ENDPOINTS_PER_SLICE) {
      throw new KubernetesDiscoveryError(
        `EndpointSlice ${sliceName} has ${list.length} endpoints, more than discovery.k8s.io/v1 allows (${MAX_ENDPOINTS_PER_SLICE}); refusing it`,
        'invalid',
        `check what writes EndpointSlices matching ${this.selector} (LIBCLUSTER_KUBERNETES_SELECTOR)`,
      );
    }
    const labels = ((slice.metadata as Obj | undefined)?.labels ?? {}) as Record<string, unknown>;
    const service = this.options.serviceName ?? stringOr(labels['kubernetes.io/service-name']);
    for (const raw of list as Obj[]) {
      if (!raw || typeof raw !== 'object') continue;
      const ip = Array.isArray(raw.addresses) ? stringOr(raw.addresses[0]) : undefined;
      if (!ip || isIP(ip) === 0) continue;
      const c = (raw.conditions ?? {}) as {
        ready?: unknown;
        serving?: unknown;
        terminating?: unknown;
      };
      const terminating = c.terminating === true;
      const ready =
        typeof c.ready === 'boolean'
          ? c.ready
          : typeof c.serving === 'boolean'
            ? c.serving && !terminating
            : !terminating;
      if (!(ready || (this.includeNotReady && !terminating))) continue;
      const name = this.nameFor(ip, stringOr(raw.hostname), service);
      if (name) add(ip, name);
    }
  }

  private fromPod(pod: Obj, add: (ip: string, name: string) => void): void {
    const metadata = (pod.metadata ?? {}) as Obj;
    if (metadata.deletionTimestamp) return;
    const status = (pod.status ?? {}) as { podIP?: unknown; phase?: unknown; conditions?: unknown };
    const ip = stringOr(status.podIP);
    if (!ip || isIP(ip) === 0) return;
    const phase = status.phase;
    const conditions = Array.isArray(status.conditions) ? (status.conditions as Obj[]) : [];
    const ready =
      phase === 'Running' && conditions.some((c) => c?.type === 'Ready' && c?.status === 'True');
    const alive = phase === 'Running' || phase === 'Pending';
    if (!(ready || (this.includeNotReady && alive))) return;
    const spec = (pod.spec ?? {}) as Obj;
    const hostname = stringOr(spec.hostname) ?? stringOr(metadata.name);
    const name = this.nameFor(ip, hostname, this.options.serviceName ?? stringOr(spec.subdomain));
    if (name) add(ip, name);
  }

  private nameFor(
    ip: string,
    hostname: string | undefined,
    service: string | undefined,
  ): string | undefined {
    const basename = this.options.nodeBasename ?? this.ctx!.self.name.split('@')[0] ?? 'app';
    switch (this.mode) {
      case 'ip':
        return `${basename}@${ip}`;
      case 'dns':
        return `${basename}@${ip.replace(/[.:]/g, '-')}.${this.namespace}.pod.${this.clusterDomain}`;
      case 'hostname':
        if (!hostname || !service) {
          this.limited!.warn(
            `hostname:${ip}`,
            `pod ${ip} has no ${hostname ? 'service name' : 'hostname'} for hostname mode; skipped (set LIBCLUSTER_KUBERNETES_SERVICE_NAME and give the pods a hostname, e.g. a StatefulSet)`,
          );
          return undefined;
        }
        return `${basename}@${hostname}.${service}.${this.namespace}.svc.${this.clusterDomain}`;
    }
  }

  /** Turns a non-2xx API answer into an error that says what to fix. */
  private answerError(answer: KubeApiAnswer, verb: 'list' | 'watch'): KubernetesDiscoveryError {
    const { status } = answer;
    const body = (answer.body && typeof answer.body === 'object' ? answer.body : {}) as {
      message?: unknown;
      details?: { kind?: unknown };
    };
    const apiMessage =
      typeof body.message === 'string'
        ? body.message
        : typeof answer.body === 'string'
          ? answer.body.slice(0, 200)
          : '';
    const said = apiMessage ? `: ${apiMessage}` : '';
    const r = this.resource;
    const target = `${r.resource}${r.apiGroup ? `.${r.apiGroup}` : ''} in namespace ${this.namespace}`;
    switch (status) {
      case 401:
        return new KubernetesDiscoveryError(
          `the API server rejected the service-account token (401 Unauthorized)${said}`,
          'unauthorized',
          `the token in ${this.client.file('token')} is expired or revoked (it is read again for every request; check the pod's token volume)`,
          { status },
        );
      case 403:
        return new KubernetesDiscoveryError(
          `not allowed to ${verb} ${target} (403 Forbidden)${said}`,
          'forbidden',
          `add this rule to a Role in namespace ${this.namespace} bound to the pod's service account: ` +
            `{ apiGroups: ["${r.apiGroup}"], resources: ["${r.resource}"], verbs: ["list", "watch"] }`,
          { status },
        );
      case 404:
        if (body.details?.kind === 'namespaces' || /namespace/i.test(apiMessage)) {
          return new KubernetesDiscoveryError(
            `namespace ${this.namespace} does not exist (404)${said}`,
            'namespace',
            'set LIBCLUSTER_KUBERNETES_NAMESPACE to the namespace the app runs in',
            { status },
          );
        }
        return new KubernetesDiscoveryError(
          `the API server does not serve ${r.what} at ${r.path(this.namespace!)} (404)${said}`,
          'not-found',
          r.resource === 'endpointslices'
            ? 'EndpointSlices need Kubernetes 1.21 or later; on older clusters set LIBCLUSTER_KUBERNETES_IP_LOOKUP_MODE=pods'
            : `check KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT (${this.apiAddress})`,
          { status },
        );
      case 400:
      case 422:
        return new KubernetesDiscoveryError(
          `the API server refused the label selector ${JSON.stringify(this.selector)} (${status})${said}`,
          'selector',
          'fix LIBCLUSTER_KUBERNETES_SELECTOR (e.g. app=myapp or app in (a,b))',
          { status },
        );
      default:
        return new KubernetesDiscoveryError(
          `${verb} of ${target} failed (${status || 'no status'})${said}`,
          'api',
          status === 429 || status >= 500
            ? 'the API server is overloaded or restarting; retrying with backoff'
            : '',
          { status },
        );
    }
  }

  /** Turns a thrown error (network, TLS, stream) into a {@link KubernetesDiscoveryError}. */
  private describe(err: unknown, verb: 'list' | 'watch'): KubernetesDiscoveryError {
    if (err instanceof KubernetesDiscoveryError) return err;
    const e = (err ?? {}) as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : String(err);
    if (code === 'EWATCH') {
      return new KubernetesDiscoveryError(
        `watch of ${this.resource.what}: ${message}`,
        'watch',
        'listing again',
        { cause: err },
      );
    }
    if (TLS_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL')) {
      return new KubernetesDiscoveryError(
        `the API server's certificate at ${this.apiAddress} does not verify against ${this.client.file('ca.crt')} (${code}: ${message})`,
        'ca',
        'check the CA file of the service account (LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH) and KUBERNETES_SERVICE_HOST',
        { cause: err },
      );
    }
    if (code === 'ETIMEDOUT') {
      return new KubernetesDiscoveryError(
        `the API server at ${this.apiAddress} did not answer the ${verb} within ${this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS} ms`,
        'timeout',
        'check KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT and network policies (egress to the API server)',
        { cause: err },
      );
    }
    return new KubernetesDiscoveryError(
      `cannot reach the API server at ${this.apiAddress} (${code ? `${code}: ` : ''}${message})`,
      'network',
      'check KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT and network policies (egress to the API server)',
      { cause: err },
    );
  }

  /** min(cap, base · 2^(n-1)), jittered down by up to half. */
  private backoff(failures: number): number {
    const capped = Math.min(this.maxBackoffMs, BASE_BACKOFF_MS * 2 ** Math.min(failures - 1, 20));
    return capped * (0.5 + Math.random() * 0.5);
  }

  private jitter(ms: number): number {
    return ms * (0.9 + Math.random() * 0.2);
  }

  /** Waits `ms`, or less when the strategy stops. */
  private sleep(ms: number, generation: number): Promise<void> {
    if (generation !== this.generation) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wake = done;
    });
  }
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
]);

function nameOf(object: Obj): string | undefined {
  const name = (object.metadata as Obj | undefined)?.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
