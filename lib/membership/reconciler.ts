import { Logger, type LoggerService } from '@nestjs/common';
import { ClusterError } from '../errors/cluster.error.js';
import type { DiscoveredEndpoint } from '../strategies/strategy.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import type { MemberLink } from './member-link.interface.js';

/** What the reconciler needs from the rest of the node. */
export interface ReconcilerDeps {
  /** Opens and authenticates a link (the transport's dial). */
  dial(host: string, port: number): Promise<MemberLink>;
  /** Hands a new link to membership; false when membership refused it. */
  accept(link: MemberLink): boolean;
  /** True when `name` is a current remote member. */
  isMember(name: string): boolean;
  /** Name of the member advertising `endpoint`, if any. */
  memberAt(endpoint: string): string | undefined;
  /** Closes the link to a member that discovery no longer lists. */
  drop(name: string): void;
  /** This node's name and advertised endpoint. */
  self(): { name: string; endpoint: string };
}

export interface ReconcilerOptions {
  /** First redial delay, ms. */
  baseDelayMs: number;
  /** Redial delay cap, ms. */
  maxDelayMs: number;
  /** Link port, named in the "cannot reach" hint. */
  clusterPort: number;
  /** Attempts for endpoints learned from peers rather than discovered. @default 5 */
  learnedAttempts?: number;
  logger?: LoggerService;
  /** Random seam for jitter. @default Math.random */
  random?: () => number;
}

interface Target {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  /** Name expected there (from discovery), or learned at the first successful dial. */
  name?: string;
  /** Topologies that currently discover this endpoint. */
  readonly topologies: Set<string>;
  /** Remaining attempts when only learned from a peer (no topology lists it). */
  learnedAttemptsLeft: number;
  failures: number;
  dialing: boolean;
  timer?: NodeJS.Timeout;
  /** The endpoint turned out to be this node. */
  isSelf: boolean;
  /** Left gracefully: failed dials are logged at debug level until it answers again. */
  quiet?: boolean;
}

/**
 * Keeps links in line with discovery. Strategies hand over their full discovered set per
 * topology; the reconciler dials endpoints that are not members yet with capped, jittered
 * exponential backoff, keeps retrying them as long as some topology lists them, never dials
 * this node, and closes links to endpoints every topology dropped. A failed discovery poll
 * never reaches it (strategies report errors separately), so it never removes anyone then.
 */
export class Reconciler {
  private readonly logger: LoggerService;
  private readonly limited: RateLimitedLogger;
  private readonly targets = new Map<string, Target>();
  private readonly random: () => number;
  private stopped = false;

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly options: ReconcilerOptions,
  ) {
    this.logger = options.logger ?? new Logger(Reconciler.name);
    this.limited = new RateLimitedLogger(this.logger);
    this.random = options.random ?? Math.random;
  }

  /** Replaces the set `topology` discovers. */
  setDiscovered(topology: string, endpoints: readonly DiscoveredEndpoint[]): void {
    if (this.stopped) return;
    const keys = new Set<string>();
    for (const endpoint of endpoints) {
      const target = this.target(endpoint);
      if (!target) continue;
      keys.add(target.key);
      if (!target.topologies.has(topology)) {
        target.topologies.add(topology);
        this.schedule(target, 0);
      }
    }
    for (const target of [...this.targets.values()]) {
      if (target.topologies.has(topology) && !keys.has(target.key)) {
        target.topologies.delete(topology);
        this.release(target, true);
      }
    }
  }

  /** Removes endpoints from `topology`'s set and closes their links if nothing else lists them. */
  removeDiscovered(topology: string, endpoints: readonly DiscoveredEndpoint[]): void {
    for (const endpoint of endpoints) {
      const target = this.targets.get(key(endpoint.host, endpoint.port));
      if (!target || !target.topologies.delete(topology)) continue;
      this.release(target, true);
    }
  }

  /** Endpoints a peer told us about: dialled a few times, not forever. */
  learn(endpoints: readonly DiscoveredEndpoint[]): void {
    if (this.stopped) return;
    for (const endpoint of endpoints) {
      const target = this.target(endpoint);
      if (!target) continue;
      if (target.topologies.size === 0) {
        target.learnedAttemptsLeft = this.options.learnedAttempts ?? 5;
      }
      this.schedule(target, 0);
    }
  }

  /**
   * A member went away: redial every endpoint still wanted. After a crash, at once (after a
   * short jittered delay). After a graceful leave the process is gone on purpose: redial at
   * the slowest pace and without warnings until it answers again (a restart comes back).
   */
  memberGone(name: string, graceful = false): void {
    for (const target of this.targets.values()) {
      if (target.name === name && this.wanted(target)) {
        target.failures = graceful ? 20 : 0;
        target.quiet = graceful;
        this.schedule(target, graceful ? this.options.maxDelayMs : this.delay(0));
      }
    }
  }

  /** Number of endpoints currently wanted (for health and tests). */
  size(): number {
    return [...this.targets.values()].filter((t) => this.wanted(t) && !t.isSelf).length;
  }

  stop(): void {
    this.stopped = true;
    for (const target of this.targets.values()) clearTimeout(target.timer);
    this.targets.clear();
  }

  private target(endpoint: DiscoveredEndpoint): Target | undefined {
    const self = this.deps.self();
    if (endpoint.name !== undefined && endpoint.name === self.name) return undefined;
    const k = key(endpoint.host, endpoint.port);
    if (k === self.endpoint) return undefined;
    let target = this.targets.get(k);
    if (!target) {
      target = {
        key: k,
        host: endpoint.host,
        port: endpoint.port,
        name: endpoint.name,
        topologies: new Set(),
        learnedAttemptsLeft: 0,
        failures: 0,
        dialing: false,
        isSelf: false,
      };
      this.targets.set(k, target);
    } else if (endpoint.name !== undefined) {
      target.name = endpoint.name;
    }
    return target;
  }

  private wanted(target: Target): boolean {
    return target.topologies.size > 0 || target.learnedAttemptsLeft > 0;
  }

  private linked(target: Target): boolean {
    if (target.name !== undefined && this.deps.isMember(target.name)) return true;
    const at = this.deps.memberAt(target.key);
    if (at !== undefined) {
      target.name = at;
      return true;
    }
    return false;
  }

  private release(target: Target, closeLink: boolean): void {
    if (this.wanted(target)) return;
    clearTimeout(target.timer);
    this.targets.delete(target.key);
    if (closeLink && target.name !== undefined && this.deps.isMember(target.name)) {
      this.logger.log(`${target.name} (${target.key}) is no longer discovered; closing its link`);
      this.deps.drop(target.name);
    }
  }

  private schedule(target: Target, delayMs: number): void {
    if (this.stopped || target.isSelf) return;
    clearTimeout(target.timer);
    target.timer = setTimeout(() => void this.attempt(target), delayMs);
    target.timer.unref();
  }

  private delay(failures: number): number {
    const { baseDelayMs, maxDelayMs } = this.options;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(failures, 20));
    // Equal jitter: half fixed, half random — spreads redials without collapsing to zero.
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  private async attempt(target: Target): Promise<void> {
    target.timer = undefined;
    if (this.stopped || target.dialing || this.targets.get(target.key) !== target) return;
    if (!this.wanted(target)) {
      this.targets.delete(target.key);
      return;
    }
    if (this.linked(target)) {
      target.failures = 0;
      return;
    }
    target.dialing = true;
    try {
      const link = await this.deps.dial(target.host, target.port);
      target.dialing = false;
      if (this.stopped) {
        link.close('local');
        return;
      }
      target.name = link.peer.name;
      target.failures = 0;
      target.quiet = false;
      if (link.peer.name === this.deps.self().name) {
        target.isSelf = true;
        link.close('local');
        return;
      }
      this.deps.accept(link);
      if (target.topologies.size === 0) target.learnedAttemptsLeft = 0;
    } catch (error) {
      target.dialing = false;
      if (this.stopped) return;
      target.failures += 1;
      this.report(target, error);
      if (target.topologies.size === 0) {
        target.learnedAttemptsLeft -= 1;
        if (target.learnedAttemptsLeft <= 0) {
          this.targets.delete(target.key);
          return;
        }
      }
      this.schedule(target, this.delay(target.failures));
    }
  }

  private report(target: Target, error: unknown): void {
    const who = target.name ? `${target.name} at ${target.key}` : target.key;
    const err = error as Error & { code?: string };
    const name = err?.name ?? 'Error';
    if (name === 'CookieMismatchError') {
      this.limited.warn(
        `cookie:${target.host}`,
        `cookie mismatch with ${who}: the two nodes have different cookies — set the same NODE_COOKIE on every node`,
      );
      return;
    }
    if (name === 'ProtocolVersionError') return; // the transport logs both versions itself
    if (target.quiet) {
      this.logger.debug?.(`${who} (left the cluster) is not back yet: ${err?.message ?? String(error)}`);
      return;
    }
    if (name === 'PeerUnreachableError' || (error instanceof ClusterError && error.retryable)) {
      this.limited.warn(
        `unreachable:${target.key}`,
        `${target.name ? `${target.name}: ` : ''}${err.message}; retrying`,
      );
      return;
    }
    this.limited.warn(`dial:${target.key}`, `link to ${who} failed: ${err?.message ?? String(error)}; retrying`);
  }
}

function key(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
