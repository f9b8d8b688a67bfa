import { Logger, type LoggerService } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { ClusterError } from '../errors/cluster.error.js';
import { HandshakeTimeoutError } from '../errors/handshake-timeout.error.js';
import { LinkRefusedError } from '../errors/link-refused.error.js';
import { PeerUnreachableError } from '../errors/peer-unreachable.error.js';
import { formatEndpoint } from '../identity/endpoint.js';
import { dialsFirst } from '../identity/identity.js';
import type { Member } from '../interfaces/member.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import type { Membership } from '../membership/membership.js';
import type { MembershipChange } from '../membership/membership-change.js';
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js';
import { systemRandom, type Random } from '../runtime/random.js';
import type { DiscoveredEndpoint } from '../strategies/strategy.interface.js';

/** What the reconciler drives: the dialer below it and the member table it reads. */
export interface ReconcilerDeps {
  /** Opens and authenticates a link; the transport hands it to membership itself. */
  dial(host: string, port: number): Promise<unknown>;
  /** The member table: read, told to drop or readmit, and its `changes` followed. */
  readonly membership: Pick<Membership, 'memberAt' | 'member' | 'drop' | 'readmit' | 'changes'>;
  /** This node's name and advertised endpoint. */
  self(): { name: string; endpoint: string };
}

export interface ReconcilerOptions {
  /** First redial delay, ms. */
  baseDelayMs: number;
  /** Redial delay cap, ms (also the pace of redials that wait for the peer to change its mind). */
  maxDelayMs: number;
  /** Dials (connect + handshake) in flight at once; more wait their turn. @default 8 */
  maxConcurrentDials?: number;
  /**
   * When both nodes know each other's name, the one that dials first (`dialsFirst`) dials at once and
   * the other waits this long first (one link instead of two crossing), ms. @default 1500
   */
  graceMs?: number;
  /** Attempts for an endpoint only learned from a peer (no topology lists it). @default 3 */
  learnedAttempts?: number;
  /** How long a learned endpoint stays wanted, ms. @default 30000 */
  learnedTtlMs?: number;
  /** Learned endpoints and departed incarnations remembered at most, each. @default 4096 */
  maxRemembered?: number;
  clock?: Clock;
  random?: Random;
  logger?: LoggerService;
}

/** Why a target is not redialled promptly. */
type Hold =
  /** The peer's discovery dropped this node: wait until ours lists it anew, or the slow pace. */
  | 'dropped'
  /** Left gracefully with the incarnation discovery announces: wait for another incarnation. */
  | 'departed'
  /** A handshake refusal (superseded, name taken): retry at the slow pace only. */
  | 'refused';

interface Target {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  /** Name expected there (from discovery or peers), or learned at the first successful dial. */
  name?: string;
  /** Incarnation announced by discovery or peers, when known. */
  incarnation?: string;
  /** Topologies that currently discover this endpoint. */
  readonly topologies: Set<string>;
  /** Learned from a peer: wanted until then (clock ms), 0 when not learned. */
  learnedUntil: number;
  learnedAttemptsLeft: number;
  failures: number;
  state: 'idle' | 'scheduled' | 'queued' | 'dialing';
  timer?: TimerHandle;
  /** The endpoint turned out to be this node. */
  isSelf: boolean;
  hold?: Hold;
  /** Failed dials are logged at debug level (the peer left on purpose). */
  quiet: boolean;
}

/**
 * Keeps links in line with discovery: a small state machine per endpoint over the discovered
 * sets and membership's changes. Strategies hand over their full discovered set per topology;
 * the reconciler dials endpoints that are not members with capped, jittered exponential
 * backoff (at most `maxConcurrentDials` at once), keeps retrying them while some topology
 * lists them, never dials this node, and drops — by endpoint and name, never by name alone —
 * the member at an endpoint every topology dropped. A failed discovery poll never reaches it.
 *
 * Leave means leave: a peer that left gracefully is not redialled at that incarnation; a peer
 * whose discovery dropped this node is redialled only when this node's discovery lists it
 * anew, or at the slow pace. Endpoints learned from peers are dialled a few times and then
 * forgotten; every map is bounded.
 */
export class Reconciler {
  private readonly logger: LoggerService;
  private readonly limited: RateLimitedLogger;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly targets = new Map<string, Target>();
  /** Targets by the name expected there (an index of `targets`: a join finds its targets at once). */
  private readonly named = new Map<string, Set<Target>>();
  /** Keys of the targets each topology lists (an index of `Target.topologies`). */
  private readonly listedBy = new Map<string, Set<string>>();
  /** Endpoint → incarnation that left gracefully from there (bounded, expiring). */
  private readonly departed = new Map<string, { incarnation: string; until: number }>();
  private readonly queue: Target[] = [];
  private readonly subscription: Subscription;
  private readonly maxConcurrentDials: number;
  /** Dials allowed in flight now (`adjustWindow`): between 1 and `maxConcurrentDials`. */
  private window: number;
  private readonly graceMs: number;
  private readonly learnedAttempts: number;
  private readonly learnedTtlMs: number;
  private readonly maxRemembered: number;
  private active = 0;
  private learnedCount = 0;
  private stopped = false;

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly options: ReconcilerOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.logger = options.logger ?? new Logger(Reconciler.name);
    this.limited = new RateLimitedLogger(this.logger, 60_000, 1024, () => this.clock.now());
    this.maxConcurrentDials = options.maxConcurrentDials ?? 8;
    this.window = this.maxConcurrentDials;
    this.graceMs = options.graceMs ?? 1500;
    this.learnedAttempts = options.learnedAttempts ?? 3;
    this.learnedTtlMs = options.learnedTtlMs ?? 30_000;
    this.maxRemembered = options.maxRemembered ?? 4096;
    this.subscription = deps.membership.changes.subscribe((change) => this.onChange(change));
  }

  /** Replaces the set `topology` discovers. */
  setDiscovered(topology: string, endpoints: readonly DiscoveredEndpoint[]): void {
    if (this.stopped) return;
    const keys = new Set<string>();
    const before = this.listedBy.get(topology);
    for (const endpoint of endpoints) {
      const target = this.target(endpoint);
      if (!target) continue;
      keys.add(target.key);
      if (target.topologies.has(topology)) continue;
      target.topologies.add(topology);
      if (target.learnedUntil > 0) this.unlearn(target);
      // Listed anew: whatever the peer said before, and whatever this node dropped, is over.
      if (target.hold === 'dropped') target.hold = undefined;
      this.deps.membership.readmit(target.key);
      if (target.hold === undefined) this.schedule(target, this.firstDelay(target));
    }
    this.listedBy.set(topology, keys);
    if (!before) return;
    for (const key of before) {
      if (keys.has(key)) continue;
      const target = this.targets.get(key);
      if (!target || !target.topologies.delete(topology)) continue;
      this.release(target);
    }
  }

  /** Removes endpoints from `topology`'s set and drops their members if nothing else lists them. */
  removeDiscovered(topology: string, endpoints: readonly DiscoveredEndpoint[]): void {
    for (const endpoint of endpoints) {
      const key = formatEndpoint(endpoint);
      this.listedBy.get(topology)?.delete(key);
      const target = this.targets.get(key);
      if (!target || !target.topologies.delete(topology)) continue;
      this.release(target);
    }
  }

  /** Sizes of the internal maps (for bounded-state checks and health). */
  stats(): {
    targets: number;
    learned: number;
    departed: number;
    queued: number;
    dialing: number;
    window: number;
  } {
    return {
      targets: this.targets.size,
      learned: this.learnedCount,
      departed: this.departed.size,
      queued: this.queue.length,
      dialing: this.active,
      window: Math.floor(this.window),
    };
  }

  /** Number of endpoints currently wanted (for health and tests). */
  size(): number {
    return [...this.targets.values()].filter((t) => this.wanted(t) && !t.isSelf).length;
  }

  stop(): void {
    this.stopped = true;
    this.subscription.unsubscribe();
    for (const target of this.targets.values()) this.clock.clearTimeout(target.timer);
    this.targets.clear();
    this.named.clear();
    this.listedBy.clear();
    this.queue.length = 0;
    this.departed.clear();
  }

  // ---- membership changes ----------------------------------------------------------------

  private onChange(change: MembershipChange): void {
    if (this.stopped) return;
    switch (change.type) {
      case 'join':
      case 'reachable':
        return this.joined(change.member);
      case 'unreachable':
        // Other members reach it; this node keeps dialling it as it would a member that is down.
        return this.lost(change.member);
      case 'learned':
        return this.learn(change.endpoints);
      case 'down':
        return this.lost(change.member);
      case 'leave':
        if (change.reason === 'shutdown') return this.departedGracefully(change.member);
        if (change.reason === 'discovery') return this.droppedByPeer(change.member);
        return undefined;
    }
  }

  private joined(member: Member): void {
    const found = new Set(this.named.get(member.name));
    const at = this.targets.get(member.endpoint);
    if (at) found.add(at);
    for (const target of found) {
      if (target.key === member.endpoint) {
        this.rename(target, member.name);
        // Only where discovery or peers announce incarnations: a static, DNS or EC2 target
        // keeps none, so a graceful leave there is redialled at the slow pace (a restart may
        // come back at the same endpoint, and may be unable to dial in itself — during a
        // cookie rotation, say).
        if (target.incarnation !== undefined) target.incarnation = member.incarnation;
      }
      target.failures = 0;
      target.hold = undefined;
      target.quiet = false;
      if (target.topologies.size === 0) this.forget(target);
    }
    this.departed.delete(member.endpoint);
  }

  private lost(member: Member): void {
    const target = this.targets.get(member.endpoint);
    if (!target || !this.wanted(target)) return;
    target.failures = 0;
    target.hold = undefined;
    this.schedule(target, this.delay(0));
  }

  private departedGracefully(member: Member): void {
    this.remember(member.endpoint, member.incarnation);
    const target = this.targets.get(member.endpoint);
    if (!target) return;
    if (target.topologies.size === 0) {
      this.forget(target);
      return;
    }
    if (target.incarnation === member.incarnation) {
      // Discovery announces exactly the process that left: nothing to dial until it changes.
      target.hold = 'departed';
      this.cancel(target);
      return;
    }
    // Discovery does not know incarnations (static, DNS, EC2): a restart may come back there;
    // it dials in itself, and this node looks again at the slow pace, quietly.
    target.quiet = true;
    target.failures = 20;
    this.schedule(target, this.options.maxDelayMs);
  }

  private droppedByPeer(member: Member): void {
    const target = this.targets.get(member.endpoint);
    if (!target) return;
    if (target.topologies.size === 0) {
      this.forget(target);
      return;
    }
    target.hold = 'dropped';
    this.schedule(target, this.options.maxDelayMs);
  }

  private learn(endpoints: readonly DiscoveredEndpoint[]): void {
    const self = this.deps.self();
    for (const endpoint of endpoints) {
      if (endpoint.name === self.name) continue;
      if (endpoint.name !== undefined && this.deps.membership.member(endpoint.name)) continue;
      const key = formatEndpoint(endpoint);
      if (
        endpoint.incarnation !== undefined &&
        this.departedIncarnation(key) === endpoint.incarnation
      )
        continue;
      const target = this.target(endpoint);
      if (!target || target.topologies.size > 0 || target.isSelf) continue;
      if (target.learnedUntil === 0) this.learnedCount++;
      target.learnedUntil = this.clock.now() + this.learnedTtlMs;
      target.learnedAttemptsLeft = this.learnedAttempts;
      if (target.state === 'idle') this.schedule(target, this.firstDelay(target));
    }
    this.evictLearned();
  }

  // ---- targets ---------------------------------------------------------------------------

  private target(endpoint: DiscoveredEndpoint): Target | undefined {
    const self = this.deps.self();
    if (endpoint.name !== undefined && endpoint.name === self.name) return undefined;
    const key = formatEndpoint(endpoint);
    if (key === self.endpoint) return undefined;
    let target = this.targets.get(key);
    if (!target) {
      target = {
        key,
        host: endpoint.host,
        port: endpoint.port,
        topologies: new Set(),
        learnedUntil: 0,
        learnedAttemptsLeft: 0,
        failures: 0,
        state: 'idle',
        isSelf: false,
        quiet: false,
      };
      this.targets.set(key, target);
    }
    if (endpoint.name !== undefined) this.rename(target, endpoint.name);
    if (endpoint.incarnation !== undefined && endpoint.incarnation !== target.incarnation) {
      target.incarnation = endpoint.incarnation;
      if (target.hold === 'departed' && this.departedIncarnation(key) !== endpoint.incarnation) {
        target.hold = undefined;
        target.quiet = false;
        target.failures = 0;
        if (this.wanted(target)) this.schedule(target, this.firstDelay(target));
      }
    }
    return target;
  }

  private wanted(target: Target): boolean {
    if (target.topologies.size > 0) return true;
    return target.learnedUntil > this.clock.now() && target.learnedAttemptsLeft > 0;
  }

  /** Linked: a member advertises this endpoint (with the expected name), or the expected name is a member elsewhere. */
  private linked(target: Target): boolean {
    const at = this.deps.membership.memberAt(target.key);
    if (at !== undefined && (target.name === undefined || at.name === target.name)) {
      this.rename(target, at.name);
      return true;
    }
    return target.name !== undefined && this.deps.membership.member(target.name) !== undefined;
  }

  /** Nothing lists the target any more: forget it, and drop the member advertising exactly its endpoint. */
  private release(target: Target): void {
    if (this.wanted(target)) return;
    this.forget(target);
    const member = this.deps.membership.memberAt(target.key);
    if (member && (target.name === undefined || member.name === target.name)) {
      this.logger.log(`${member.name} (${target.key}) is no longer discovered; closing its link`);
      this.deps.membership.drop(target.key, member.name);
    }
  }

  private forget(target: Target): void {
    this.cancel(target);
    if (target.learnedUntil > 0) this.unlearn(target);
    if (this.targets.get(target.key) === target) this.targets.delete(target.key);
    this.rename(target, undefined);
  }

  /** Sets the name expected at `target`, keeping the by-name index. */
  private rename(target: Target, name: string | undefined): void {
    if (target.name === name) return;
    if (target.name !== undefined) {
      const set = this.named.get(target.name);
      set?.delete(target);
      if (set?.size === 0) this.named.delete(target.name);
    }
    target.name = name;
    if (name === undefined) return;
    let set = this.named.get(name);
    if (!set) this.named.set(name, (set = new Set()));
    set.add(target);
  }

  private unlearn(target: Target): void {
    target.learnedUntil = 0;
    target.learnedAttemptsLeft = 0;
    this.learnedCount--;
  }

  private evictLearned(): void {
    if (this.learnedCount <= this.maxRemembered) return;
    for (const target of this.targets.values()) {
      if (this.learnedCount <= this.maxRemembered) return;
      if (target.topologies.size === 0 && target.state !== 'dialing') this.forget(target);
    }
  }

  private remember(endpoint: string, incarnation: string): void {
    this.departed.delete(endpoint);
    this.departed.set(endpoint, { incarnation, until: this.clock.now() + 10 * this.learnedTtlMs });
    while (this.departed.size > this.maxRemembered)
      this.departed.delete(this.departed.keys().next().value!);
  }

  private departedIncarnation(endpoint: string): string | undefined {
    const entry = this.departed.get(endpoint);
    if (!entry) return undefined;
    if (entry.until <= this.clock.now()) {
      this.departed.delete(endpoint);
      return undefined;
    }
    return entry.incarnation;
  }

  // ---- dialling --------------------------------------------------------------------------

  private firstDelay(target: Target): number {
    const self = this.deps.self();
    // A little jitter spreads a start-up storm; more would only delay the first link.
    const jitter = Math.round((this.random.next() * this.options.baseDelayMs) / 4);
    // Of two nodes that know each other's names, one dials first (the pair's order).
    return target.name !== undefined && !dialsFirst(self.name, target.name)
      ? this.graceMs + jitter
      : jitter;
  }

  private delay(failures: number): number {
    const { baseDelayMs, maxDelayMs } = this.options;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(failures, 20));
    // Equal jitter: half fixed, half random — spreads redials without collapsing to zero.
    return Math.round(ceiling / 2 + (this.random.next() * ceiling) / 2);
  }

  private cancel(target: Target): void {
    this.clock.clearTimeout(target.timer);
    target.timer = undefined;
    if (target.state === 'scheduled') target.state = 'idle';
    if (target.state === 'queued') {
      const i = this.queue.indexOf(target);
      if (i >= 0) this.queue.splice(i, 1);
      target.state = 'idle';
    }
  }

  private schedule(target: Target, delayMs: number): void {
    if (this.stopped || target.isSelf || target.state === 'dialing') return;
    this.cancel(target);
    target.state = 'scheduled';
    target.timer = this.clock.setTimeout(() => this.due(target), delayMs);
  }

  private due(target: Target): void {
    target.timer = undefined;
    target.state = 'idle';
    if (this.stopped || this.targets.get(target.key) !== target) return;
    if (!this.wanted(target)) {
      this.forget(target);
      return;
    }
    if (this.linked(target)) {
      target.failures = 0;
      if (target.topologies.size === 0) this.forget(target);
      return;
    }
    if (this.active >= Math.floor(this.window)) {
      target.state = 'queued';
      this.queue.push(target);
      return;
    }
    void this.dial(target);
  }

  private pump(): void {
    while (!this.stopped && this.active < Math.floor(this.window) && this.queue.length > 0) {
      const target = this.queue.shift()!;
      target.state = 'idle';
      this.due(target);
    }
  }

  private async dial(target: Target): Promise<void> {
    target.state = 'dialing';
    this.active++;
    let error: unknown;
    let ok = false;
    try {
      await this.deps.dial(target.host, target.port);
      ok = true;
    } catch (caught) {
      error = caught;
    }
    this.active--;
    target.state = 'idle';
    this.adjustWindow(ok, error);
    if (!this.stopped && this.targets.get(target.key) === target) {
      if (ok) this.dialled(target);
      else this.failed(target, error);
    }
    this.pump();
  }

  /**
   * Dials in flight follow the handshakes' fate, as TCP's window follows acknowledgements: a
   * handshake that timed out halves the window (down to one), a completed one widens it by
   * one (up to `maxConcurrentDials`). In a start-up storm of hundreds of processes on a few
   * cores, handshakes time out because every process is late; more dials in flight then only
   * waste the work of handshakes that are given up — with a fixed window, 200 processes on two
   * cores timed out about 10,000 handshakes and never formed the mesh.
   */
  private adjustWindow(ok: boolean, error: unknown): void {
    if (ok) this.window = Math.min(this.maxConcurrentDials, this.window + 1);
    else if (error instanceof HandshakeTimeoutError) this.window = Math.max(1, this.window / 2);
  }

  private dialled(target: Target): void {
    target.failures = 0;
    target.quiet = false;
    target.hold = undefined;
    if (target.topologies.size === 0) this.forget(target);
  }

  private failed(target: Target, error: unknown): void {
    if (error instanceof LinkRefusedError) {
      // Membership logs refusals (rate-limited); here they only shape the redial pace.
      if (error.reason === 'self') {
        target.isSelf = true;
        this.cancel(target);
        return;
      }
      if (target.topologies.size === 0) {
        this.forget(target);
        return;
      }
      target.hold = error.reason === 'dropped' ? 'dropped' : 'refused';
      target.failures = 20;
      this.schedule(target, this.options.maxDelayMs);
      return;
    }
    target.failures += 1;
    this.report(target, error);
    if (target.topologies.size === 0) {
      target.learnedAttemptsLeft -= 1;
      if (!this.wanted(target)) {
        this.forget(target);
        return;
      }
    }
    this.schedule(target, this.delay(target.failures));
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
    if (error instanceof PeerUnreachableError && error.reason === 'descriptors') {
      // One line a minute for the process's limit, not one per endpoint.
      this.limited.error('descriptors', err.message);
      return;
    }
    if (target.quiet || target.topologies.size === 0) {
      this.logger.debug?.(`${who} is not reachable: ${err?.message ?? String(error)}`);
      return;
    }
    if (name === 'PeerUnreachableError' || (error instanceof ClusterError && error.retryable)) {
      // Keyed by the kind of failure too: when the reason changes (nothing listening, then a
      // refused certificate), the new one is shown at once.
      this.limited.warn(
        `unreachable:${name}:${target.key}`,
        `${target.name ? `${target.name}: ` : ''}${err.message}; retrying`,
      );
      return;
    }
    this.limited.warn(
      `dial:${target.key}`,
      `link to ${who} failed: ${err?.message ?? String(error)}; retrying`,
    );
  }
}
