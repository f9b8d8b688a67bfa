import { readInstanceMetadata, type InstanceMetadata } from '../config/instance-metadata.js';
import { ClusterError } from '../errors/cluster.error.js';
import { Ec2DiscoveryError } from '../errors/ec2-discovery.error.js';
import { MissingPackageError } from '../errors/missing-package.error.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import type { Ec2StrategyOptions } from '../interfaces/strategy-options.interface.js';
import type { ClusterStrategy, DiscoveredEndpoint, StrategyContext } from './strategy.interface.js';

// The shapes of `@aws-sdk/client-ec2` the strategy uses, spelled out here so that neither the
// compiled code nor its type declarations need the package: it is optional, and loaded with
// `import()` only when an EC2 topology starts.

/** The `DescribeInstances` input fields the strategy sends. */
interface DescribeInstancesInput {
  Filters?: { Name?: string; Values?: string[] }[];
  MaxResults?: number;
  NextToken?: string;
}

/** The instance fields the strategy reads. */
interface Ec2Instance {
  InstanceId?: string;
  PrivateIpAddress?: string;
  PublicIpAddress?: string;
  Tags?: { Key?: string; Value?: string }[];
}

/** The `DescribeInstances` output fields the strategy reads. */
interface DescribeInstancesOutput {
  Reservations?: { Instances?: Ec2Instance[] }[];
  NextToken?: string;
}

/** The parts of `@aws-sdk/client-ec2` the strategy uses. */
export interface Ec2SdkModule {
  EC2Client: new (config: { region?: string }) => Ec2ClientLike;
  DescribeInstancesCommand: new (input: DescribeInstancesInput) => unknown;
}

/** What the strategy needs from an EC2 client: `EC2Client#send` with an abort signal. */
export interface Ec2ClientLike {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
  destroy?(): void;
}

/** Constructor options: the topology's {@link Ec2StrategyOptions} plus what the core supplies. */
export interface Ec2StrategyConfig extends Ec2StrategyOptions {
  /** Link port of every discovered instance (`CLUSTER_PORT`, the same on every node). */
  clusterPort: number;
  /**
   * This instance's metadata when the caller already read it; `null` when it is known to be
   * unavailable (then a missing `tagValue` cannot be derived). @default read on demand
   */
  instanceMetadata?: InstanceMetadata | null;
  /** Deadline of one `DescribeInstances` request, ms. @default 10000 */
  requestTimeoutMs?: number;
  /** Upper bound of the retry delay after failed polls, ms. @default 60000 */
  maxBackoffMs?: number;
  /** Seam: reads the instance metadata when `instanceMetadata` is undefined. @default {@link readInstanceMetadata} */
  readMetadata?: () => Promise<InstanceMetadata | null>;
  /** Seam: loads the AWS SDK. @default `import('@aws-sdk/client-ec2')` */
  loadSdk?: () => Promise<Ec2SdkModule>;
  /**
   * A member that is not the leader polls on its own only when it has heard no poll result
   * from another member for this long (jittered by ±20 %), ms. @default 60000
   */
  fallbackPollingIntervalMs?: number;
}

/** What a polling member shares with the others after each poll (JSON over the cluster's messaging). */
interface Ec2Share {
  readonly kind: 'ec2-poll';
  /** `tagName=tagValue`: only members with the same filter use it. */
  readonly filter: string;
  /** The addresses found, on success. */
  readonly hosts?: string[];
  /** The failure, when the poll failed. */
  readonly error?: { message: string; failure: Ec2DiscoveryError['failure']; hint: string };
}

/** Poll every 5 s, as libcluster_ec2 does. */
const DEFAULT_POLLING_INTERVAL_MS = 5000;
/** A DescribeInstances call answers in well under a second; 10 s means the endpoint is unreachable. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Failed polls back off up to a minute: lets a throttled account recover, still notices a fix soon. */
const DEFAULT_MAX_BACKOFF_MS = 60_000;
/** A follower's own poll when nobody shared a result for a minute: the budget's fallback. */
const DEFAULT_FALLBACK_POLLING_INTERVAL_MS = 60_000;
/** More shared hosts than this is not a poll result (the payload limit is 1 MiB anyway). */
const MAX_SHARED_HOSTS = 10_000;
/** The largest page EC2 serves; fewer round trips in big accounts. */
const PAGE_SIZE = 1000;
/** A guard against a service that keeps returning tokens: 1000 pages of 1000 instances. */
const MAX_PAGES = 1000;

const THROTTLING_CODES = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException']);
const CREDENTIAL_CODES = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'RequestExpired',
  'IncompleteSignature',
  'OptInRequired',
  'CredentialsProviderError',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EPIPE',
  'TimeoutError',
]);

/**
 * Discovers the EC2 instances that carry a tag, like libcluster_ec2's
 * `ClusterEC2.Strategy.Tags` (the strategy OLI Torus uses on AWS).
 *
 * Every `pollingIntervalMs` (first poll at start) it calls `DescribeInstances` with the
 * filters `tag:<tagName> = tagValue` and `instance-state-name = running`, following
 * `NextToken` over every page, and hands the core the full set: one endpoint per instance,
 * `{ host: <ip>, port: clusterPort, name: '<appPrefix>@<ip>' }`, where `<ip>` is the
 * private (or, with `ipType: 'public'`, public) IPv4 address. Instances without that
 * address are skipped. An instance that stops or loses the tag drops out of the next set,
 * and the core closes its link.
 *
 * **API budget.** Once the node is a member of a cluster, only the leader (the oldest member)
 * polls at `pollingIntervalMs` (jittered ±10 %) and shares each result — the addresses
 * found, or the failure — with the other members over the cluster's own links; they hand
 * the shared set to the core as if they had polled. A member that has heard no result for
 * `fallbackPollingIntervalMs` (default 60 s, jittered) polls itself, and shares that too.
 * A node not yet linked to anyone polls at the interval, as before. So the cluster's
 * `DescribeInstances` rate stays one call per page per interval whatever its size (12 a
 * minute at the default 5 s, instead of 12 per node), plus each newcomer's first polls;
 * throttling slows the leader down with backoff and the followers wait with it. Without
 * the context's `isLeader`/`peers` (a custom context) every node polls at the interval.
 *
 * A failed poll (throttling, missing IAM permission, bad credentials, no region, network
 * down, timeout) keeps the current members: the strategy logs a warning that says what to
 * fix (e.g. `grant the IAM action ec2:DescribeInstances to this instance's role`), reports
 * an {@link Ec2DiscoveryError} to the core (shown in health) and retries with capped,
 * jittered exponential backoff. The next successful poll reports recovery.
 *
 * The SDK (`@aws-sdk/client-ec2`) is loaded only when the strategy starts; without it,
 * `start()` rejects with a {@link MissingPackageError} (`npm i @aws-sdk/client-ec2`).
 * Credentials and endpoint come from the SDK's default chain and standard settings
 * (instance profile, `AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `AWS_ENDPOINT_URL_EC2`,
 * `AWS_MAX_ATTEMPTS`, ...). The only IAM action needed is `ec2:DescribeInstances`.
 *
 * Options:
 * - `tagName` (required): the tag key (`LIBCLUSTER_EC2_STRATEGY_TAG_NAME`).
 * - `tagValue`: the value to match (`LIBCLUSTER_EC2_STRATEGY_TAG_VALUE`); default: this
 *   instance's own value of `tagName`, looked up once (instance id from the instance
 *   metadata, then `DescribeInstances` on it). Until it is known the strategy reports an
 *   error and retries.
 * - `appPrefix`: node-name prefix of discovered instances; default: the prefix of the local
 *   node name (the app name).
 * - `ipType`: `'private'` (default) or `'public'`.
 * - `pollingIntervalMs`: default 5000.
 * - `region`: default `AWS_REGION` (read by the SDK), else the region from the instance
 *   metadata, else the SDK's shared config.
 * - `client`: an `EC2Client` to use instead of the default one (custom credentials, tests).
 * - `fallbackPollingIntervalMs`: default 60000 (see API budget).
 * - `instanceMetadata`, `requestTimeoutMs` (default 10000), `maxBackoffMs` (default 60000),
 *   `readMetadata`, `loadSdk`: supplied by the core or seams for tests.
 *
 * @example
 * ClusterModule.forRoot({
 *   cookie: process.env.NODE_COOKIE,
 *   topologies: {
 *     aws: { strategy: 'ec2', config: { tagName: 'cluster', tagValue: 'oli-prod' } },
 *   },
 * });
 * // or directly:
 * const strategy = new Ec2Strategy({ tagName: 'cluster', clusterPort: 45893 });
 */
export class Ec2Strategy implements ClusterStrategy {
  private readonly pollingIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxBackoffMs: number;
  private readonly ipType: 'private' | 'public';
  private readonly loadSdk: () => Promise<Ec2SdkModule>;
  private readonly readMetadata: () => Promise<InstanceMetadata | null>;
  private readonly givenClient: Ec2ClientLike | undefined;

  private ctx: StrategyContext | undefined;
  private sdk: Ec2SdkModule | undefined;
  private client: Ec2ClientLike | undefined;
  private ownsClient = false;
  private metadata: InstanceMetadata | null | undefined;
  private tagValue: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: AbortController | undefined;
  private running = false;
  /** Bumped by every start/stop, so a poll from an earlier run never reports into a later one. */
  private generation = 0;
  private failures = 0;
  private readonly fallbackPollingIntervalMs: number;
  /** When this node last had a poll result: its own, or one a member shared. */
  private lastHeardAt = 0;
  /** The jittered fallback wait of the current round. */
  private fallbackDueMs = 0;
  private wasFollower = false;
  private unsubscribe: (() => void) | undefined;
  private limited: RateLimitedLogger | undefined;

  constructor(private readonly options: Ec2StrategyConfig) {
    if (typeof options.tagName !== 'string' || options.tagName.trim() === '') {
      throw new ClusterError(
        'ec2 strategy: tagName is required (LIBCLUSTER_EC2_STRATEGY_TAG_NAME)',
      );
    }
    if (
      options.ipType !== undefined &&
      options.ipType !== 'private' &&
      options.ipType !== 'public'
    ) {
      throw new ClusterError(
        `ec2 strategy: ipType must be 'private' or 'public', got '${String(options.ipType)}'`,
      );
    }
    if (
      options.client !== undefined &&
      typeof (options.client as Ec2ClientLike | null)?.send !== 'function'
    ) {
      throw new ClusterError('ec2 strategy: client must be an EC2Client (an object with send())');
    }
    this.pollingIntervalMs = options.pollingIntervalMs ?? DEFAULT_POLLING_INTERVAL_MS;
    this.fallbackPollingIntervalMs =
      options.fallbackPollingIntervalMs ?? DEFAULT_FALLBACK_POLLING_INTERVAL_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    this.ipType = options.ipType ?? 'private';
    this.loadSdk = options.loadSdk ?? (() => import('@aws-sdk/client-ec2'));
    // The strategy explains a missing metadata service in its own error (what to set
    // instead), so the reader's generic warning goes to debug.
    this.readMetadata =
      options.readMetadata ??
      (() =>
        readInstanceMetadata({
          logger: { warn: (message: unknown) => this.debugLog(String(message)) },
        }));
    this.givenClient = options.client as Ec2ClientLike | undefined;
    this.metadata = options.instanceMetadata;
    this.tagValue = options.tagValue;
  }

  /** Loads the SDK (rejects with {@link MissingPackageError} without it) and starts polling. */
  async start(ctx: StrategyContext): Promise<void> {
    this.ctx = ctx;
    const generation = ++this.generation;
    const sdk = await loadEc2Sdk(this.loadSdk);
    if (generation !== this.generation) return; // stopped while loading
    this.sdk = sdk;
    this.running = true;
    this.failures = 0;
    this.wasFollower = false;
    this.unsubscribe?.();
    this.unsubscribe = ctx.peers?.subscribe((payload, from) =>
      this.onShare(payload, from, generation),
    );
    this.schedule(0);
  }

  /** Stops polling, aborts a request in flight and closes the client the strategy created. */
  stop(): void {
    this.running = false;
    this.generation++;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort();
    this.inFlight = undefined;
    if (this.ownsClient) this.client?.destroy?.();
    this.client = undefined;
    this.ownsClient = false;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    const generation = this.generation;
    this.timer = setTimeout(() => void this.poll(generation), delayMs);
    this.timer.unref();
  }

  /**
   * `solo`: no leader/peers in the context (poll at the interval); `alone`: no other member
   * yet; `leader`; `follower`: another member polls and shares.
   */
  private role(): 'solo' | 'alone' | 'leader' | 'follower' {
    const ctx = this.ctx!;
    if (!ctx.isLeader || !ctx.peers) return 'solo';
    if (ctx.members().length <= 1) return 'alone';
    return ctx.isLeader() ? 'leader' : 'follower';
  }

  /** The regular pace: the interval, jittered ±10 % when members share (so polls do not align). */
  private nextInterval(): number {
    return this.role() === 'solo'
      ? this.pollingIntervalMs
      : this.pollingIntervalMs * (0.9 + Math.random() * 0.2);
  }

  private heard(): void {
    this.lastHeardAt = Date.now();
    this.fallbackDueMs = this.fallbackPollingIntervalMs * (0.8 + Math.random() * 0.4);
  }

  /** A poll result another member shared: used as this node's own when it is a follower. */
  private onShare(payload: unknown, from: string, generation: number): void {
    if (!this.running || generation !== this.generation || this.tagValue === undefined) return;
    const share = payload as Partial<Ec2Share> | null;
    if (!share || share.kind !== 'ec2-poll') return;
    if (share.filter !== `${this.options.tagName}=${this.tagValue}`) return;
    if (this.role() !== 'follower') return;
    const ctx = this.ctx!;
    if (Array.isArray(share.hosts)) {
      const hosts = share.hosts.filter((h): h is string => typeof h === 'string' && h !== '');
      if (hosts.length > MAX_SHARED_HOSTS) return;
      this.heard();
      const prefix = this.prefix();
      if (this.failures > 0) {
        ctx.logger.log(
          `EC2 discovery works again (${hosts.length} instance${hosts.length === 1 ? '' : 's'}) — polled by ${from}`,
        );
      }
      this.failures = 0;
      ctx.connect(
        hosts.map((host) => ({ host, port: this.options.clusterPort, name: `${prefix}@${host}` })),
      );
      ctx.reportOk();
    } else if (share.error && typeof share.error.message === 'string') {
      this.heard();
      this.failures++;
      const { message, failure, hint } = share.error;
      const error = new Ec2DiscoveryError(
        `${message} (polled by ${from})`,
        failure ?? 'aws',
        hint ?? '',
      );
      this.limited ??= new RateLimitedLogger(ctx.logger, 60_000);
      this.limited.warn(
        `shared:${failure}:${message}`,
        `EC2 discovery failed: ${error.message} (keeping the current members)`,
      );
      ctx.reportError(error);
    }
  }

  /** Shares a poll result with the other members (never throws: sharing is best effort). */
  private share(result: { hosts: string[] } | { error: Ec2DiscoveryError }): void {
    const peers = this.ctx?.peers;
    if (!peers || this.tagValue === undefined) return;
    const filter = `${this.options.tagName}=${this.tagValue}`;
    const share: Ec2Share =
      'hosts' in result
        ? { kind: 'ec2-poll', filter, hosts: result.hosts }
        : {
            kind: 'ec2-poll',
            filter,
            error: {
              message: result.error.message.replace(/; [^;]*$/, ''),
              failure: result.error.failure,
              hint: result.error.hint,
            },
          };
    try {
      peers.publish(share);
    } catch (err) {
      this.debugLog(`could not share the poll result: ${(err as Error).message}`);
    }
  }

  private prefix(): string {
    return this.options.appPrefix ?? this.ctx!.self.name.split('@')[0] ?? 'app';
  }

  private async poll(generation: number): Promise<void> {
    const ctx = this.ctx!;
    const current = (): boolean => this.running && generation === this.generation;
    const role = this.role();
    if (role === 'follower') {
      // Newly a follower: the leader's next result is due within an interval.
      if (!this.wasFollower) this.heard();
      this.wasFollower = true;
      if (Date.now() - this.lastHeardAt < this.fallbackDueMs) {
        this.schedule(this.nextInterval());
        return;
      }
      this.debugLog(
        `no EC2 poll result from another member for ${Date.now() - this.lastHeardAt} ms; polling`,
      );
    } else {
      this.wasFollower = false;
    }
    try {
      const client = await this.ensureClient();
      const tagValue = await this.ensureTagValue(client);
      const endpoints = await this.discover(client, tagValue);
      if (!current()) return;
      if (this.failures > 0) {
        ctx.logger.log(
          `EC2 discovery works again (${endpoints.length} instance${endpoints.length === 1 ? '' : 's'})`,
        );
      }
      this.failures = 0;
      this.heard();
      ctx.connect(endpoints);
      ctx.reportOk();
      this.share({ hosts: endpoints.map((e) => e.host) });
      this.schedule(this.nextInterval());
    } catch (err) {
      if (!current()) return;
      this.failures++;
      const error = this.describeFailure(err);
      if (error.failure === 'region' && this.ownsClient) {
        // Resolve the region again next time (the metadata may be reachable by then).
        this.client?.destroy?.();
        this.client = undefined;
      }
      const delay = this.backoff();
      ctx.logger.warn(
        `EC2 discovery failed: ${error.message} (retrying in ${Math.round(delay)} ms)`,
      );
      ctx.reportError(error);
      this.heard();
      this.share({ error });
      this.schedule(delay);
    }
  }

  /** min(cap, interval · 2^(failures-1)), jittered down by up to half. */
  private backoff(): number {
    const exp = this.pollingIntervalMs * 2 ** Math.min(this.failures - 1, 20);
    const capped = Math.min(this.maxBackoffMs, exp);
    return capped * (0.5 + Math.random() * 0.5);
  }

  private async ensureClient(): Promise<Ec2ClientLike> {
    if (this.givenClient) return this.givenClient;
    if (this.client) return this.client;
    let region = this.options.region;
    if (region === undefined && !process.env.AWS_REGION) {
      region = (await this.instanceMetadata())?.region;
    }
    if (!this.running) throw new ClusterError('ec2 strategy stopped');
    if (this.client) return this.client; // created meanwhile by a poll of a later start()
    // Without a region here the SDK still tries its shared config file.
    this.client = new this.sdk!.EC2Client(region === undefined ? {} : { region });
    this.ownsClient = true;
    return this.client;
  }

  private async instanceMetadata(): Promise<InstanceMetadata | null> {
    if (this.metadata !== undefined && this.metadata !== null) return this.metadata;
    if (this.options.instanceMetadata === null) return null;
    const read = await this.readMetadata();
    if (read) this.metadata = read; // an unreachable service is asked again next time
    return read;
  }

  private async ensureTagValue(client: Ec2ClientLike): Promise<string> {
    if (this.tagValue !== undefined) return this.tagValue;
    const { tagName } = this.options;
    const metadata = await this.instanceMetadata();
    if (!metadata) {
      throw new Ec2DiscoveryError(
        `cannot determine this instance's value of the tag ${tagName}: the instance metadata is unavailable`,
        'tag-value',
        'set LIBCLUSTER_EC2_STRATEGY_TAG_VALUE (tagValue), or make the instance metadata service reachable',
      );
    }
    const page = await this.describe(client, {
      Filters: [{ Name: 'instance-id', Values: [metadata.instanceId] }],
    });
    const self = (page.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .find((i) => i.InstanceId === metadata.instanceId);
    const value = self?.Tags?.find((t) => t.Key === tagName)?.Value;
    if (value === undefined) {
      throw new Ec2DiscoveryError(
        self
          ? `this instance (${metadata.instanceId}) has no tag ${tagName}`
          : `DescribeInstances does not list this instance (${metadata.instanceId})`,
        'tag-value',
        `tag the instance with ${tagName}, or set LIBCLUSTER_EC2_STRATEGY_TAG_VALUE (tagValue)`,
      );
    }
    this.tagValue = value;
    this.ctx!.logger.log(
      `discovering running EC2 instances tagged ${tagName}=${value} (this instance's own tag)`,
    );
    return value;
  }

  private async discover(client: Ec2ClientLike, tagValue: string): Promise<DiscoveredEndpoint[]> {
    const prefix = this.prefix();
    const filters = [
      { Name: `tag:${this.options.tagName}`, Values: [tagValue] },
      { Name: 'instance-state-name', Values: ['running'] },
    ];
    const endpoints = new Map<string, DiscoveredEndpoint>();
    const seenTokens = new Set<string>();
    let nextToken: string | undefined;
    for (let pages = 1; ; pages++) {
      const page = await this.describe(client, {
        Filters: filters,
        MaxResults: PAGE_SIZE,
        NextToken: nextToken,
      });
      for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const ip = this.addressOf(instance);
        if (!ip) {
          this.debugLog(
            `instance ${instance.InstanceId ?? '?'} has no ${this.ipType} IP address; skipped`,
          );
          continue;
        }
        endpoints.set(ip, { host: ip, port: this.options.clusterPort, name: `${prefix}@${ip}` });
      }
      nextToken = page.NextToken || undefined;
      if (nextToken === undefined) break;
      if (seenTokens.has(nextToken) || pages >= MAX_PAGES) {
        throw new Ec2DiscoveryError(
          `DescribeInstances kept paging (${pages} pages)`,
          'aws',
          'check the EC2 endpoint (AWS_ENDPOINT_URL_EC2)',
        );
      }
      seenTokens.add(nextToken);
    }
    this.debugLog(`EC2 instances found: ${[...endpoints.keys()].join(', ') || 'none'}`);
    return [...endpoints.values()];
  }

  private debugLog(message: string): void {
    if (this.ctx?.debug) this.ctx.logger.debug?.(message);
  }

  private addressOf(instance: Ec2Instance): string | undefined {
    return (
      (this.ipType === 'public' ? instance.PublicIpAddress : instance.PrivateIpAddress) || undefined
    );
  }

  /** One DescribeInstances call with a deadline; aborted by `stop()`. */
  private async describe(
    client: Ec2ClientLike,
    input: DescribeInstancesInput,
  ): Promise<DescribeInstancesOutput> {
    if (!this.running) throw new ClusterError('ec2 strategy stopped');
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.requestTimeoutMs);
    timer.unref();
    this.inFlight = controller;
    try {
      const command = new this.sdk!.DescribeInstancesCommand(input);
      return (await client.send(command, {
        abortSignal: controller.signal,
      })) as DescribeInstancesOutput;
    } catch (err) {
      if (timedOut) {
        throw new Ec2DiscoveryError(
          `DescribeInstances got no answer within ${this.requestTimeoutMs} ms`,
          'timeout',
          reachHint(),
          { cause: err },
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
      if (this.inFlight === controller) this.inFlight = undefined;
    }
  }

  private describeFailure(err: unknown): Ec2DiscoveryError {
    if (err instanceof Ec2DiscoveryError) return err;
    const e = (err ?? {}) as { name?: unknown; Code?: unknown; code?: unknown; message?: unknown };
    const code = [e.Code, e.name, e.code].find(
      (c): c is string => typeof c === 'string' && c !== 'Error' && c !== '',
    );
    const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
    const what = code && !message.includes(code) ? `${code}: ${message}` : message;
    if (code && THROTTLING_CODES.has(code)) {
      return new Ec2DiscoveryError(
        `EC2 API throttled DescribeInstances (${what})`,
        'throttled',
        'raise LIBCLUSTER_POLLING_INTERVAL or ask AWS for a higher EC2 API rate limit',
        { awsCode: code, cause: err },
      );
    }
    if (
      code === 'UnauthorizedOperation' ||
      code === 'AccessDenied' ||
      code === 'AccessDeniedException'
    ) {
      return new Ec2DiscoveryError(
        `not allowed to call DescribeInstances (${what})`,
        'unauthorized',
        "grant the IAM action ec2:DescribeInstances to this instance's role (instance profile)",
        { awsCode: code, cause: err },
      );
    }
    if (code && CREDENTIAL_CODES.has(code)) {
      return new Ec2DiscoveryError(
        `AWS rejected or found no credentials (${what})`,
        'credentials',
        'attach an instance profile (IAM role with ec2:DescribeInstances) or set AWS credentials ' +
          '(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE), and check the system clock',
        { awsCode: code, cause: err },
      );
    }
    if (/region is missing/i.test(message)) {
      return new Ec2DiscoveryError(
        `no AWS region (${what})`,
        'region',
        'set AWS_REGION (or the region option)',
        {
          cause: err,
        },
      );
    }
    if ((code && NETWORK_CODES.has(code)) || isNetworkError(err)) {
      return new Ec2DiscoveryError(`cannot reach the EC2 API (${what})`, 'network', reachHint(), {
        cause: err,
      });
    }
    return new Ec2DiscoveryError(
      `DescribeInstances failed (${what})`,
      'aws',
      'see the AWS error for details',
      {
        awsCode: code,
        cause: err,
      },
    );
  }
}

function reachHint(): string {
  const endpoint = process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL;
  return endpoint
    ? `check that this instance can reach ${endpoint} (AWS_ENDPOINT_URL_EC2)`
    : 'check that this instance can reach the regional EC2 endpoint (a NAT gateway or an ec2 VPC endpoint in private subnets)';
}

function isNetworkError(err: unknown): boolean {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    depth++
  ) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** Loads the EC2 SDK, turning "module not found" into a {@link MissingPackageError}. */
async function loadEc2Sdk(load: () => Promise<Ec2SdkModule>): Promise<Ec2SdkModule> {
  try {
    const sdk = await load();
    if (
      typeof sdk?.EC2Client !== 'function' ||
      typeof sdk.DescribeInstancesCommand !== 'function'
    ) {
      throw new Error('the module does not export EC2Client and DescribeInstancesCommand');
    }
    return sdk;
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new MissingPackageError('@aws-sdk/client-ec2', 'the ec2 strategy', err);
    }
    throw new ClusterError(`the ec2 strategy cannot load @aws-sdk/client-ec2: ${String(err)}`, {
      cause: err,
    });
  }
}
