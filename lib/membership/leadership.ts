import { Logger, type LoggerService } from '@nestjs/common';
import { BehaviorSubject, type Observable, type Subscription } from 'rxjs';
import { sameProcess } from '../identity/identity.js';
import type { Member } from '../interfaces/member.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js';
import { FrameType } from '../transport/frame-types.js';
import type { Membership } from './membership.js';
import {
  MajorityReference,
  isReachable,
  noQuorum,
  sameQuorum,
  staticQuorum,
  type QuorumSetting,
  type QuorumState,
} from './quorum.js';

/** The agreed leader and its term, as `ClusterService.leadership$` emits them. */
export interface Leadership {
  /** The leader this node and the leader agree on; `null` while there is none (or not yet). */
  readonly leader: Member | null;
  /**
   * The fencing term: larger for every new leader, the same on every member that follows it.
   * Stays as it was while `leader` is null.
   */
  readonly term: number;
}

/** Options of {@link LeadershipTracker}. */
export interface LeadershipOptions {
  /** The split-brain guard; unset: none. */
  readonly quorum?: QuorumSetting;
  /** `'majority'`: how long a side holding quorum keeps an unchanged view before it rebases, ms. @default 60000 */
  readonly quorumStableMs?: number;
  /** A leader that meets a competing term takes a new one at most once per this, ms. @default 1000 */
  readonly heartbeatIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: LoggerService;
}

/** Largest LEADERSHIP payload read; a longer one is garbage. */
const MAX_STATE_BYTES = 2048;

/** What a member last told this node about its leadership. */
interface Claim {
  /** Incarnation of the sender when it sent it. */
  readonly incarnation: string;
  readonly term: number;
  /** The leader that took `term` (name and incarnation), or null for term 0. */
  readonly issuer: Issuer | null;
  /** True when the sender follows (or is) that leader now. */
  readonly following: boolean;
}

interface Issuer {
  readonly name: string;
  readonly incarnation: string;
}

/**
 * Leadership on top of the member table: the quorum guard and the fencing term.
 *
 * **Quorum.** The candidate is membership's leader (the oldest member of the view). With a
 * guard, the node has a leader only while its side holds quorum: `required` reachable members
 * (static), or a majority of the reference membership (`'majority'`, see
 * {@link MajorityReference}). Below quorum `leader()` is null, so nobody on that side runs
 * `@LeaderOnly()` work. The state is recomputed on every change of the view, so a side that
 * gets quorum back has its leader as soon as its view has converged.
 *
 * **Term — the rule.** Every node holds a term and the leader it follows, and tells them to
 * members over the links (frame `LEADERSHIP`, JSON `{ t, o, oi, f }`: the term, the name and
 * incarnation of the leader that took it, and whether the sender follows that leader now):
 * 1. A node that becomes leader (it was not, or had no leader) takes
 *    `max(highest term seen + 1, wall clock ms)` and sends it to every member. The clock part
 *    keeps terms rising across a restart of the whole cluster (no state is kept on disk).
 * 2. A follower adopts the term its leader announces for itself, if it is larger than the
 *    follower's own term (or is the one it holds, from that same leader). Until that
 *    announcement arrives (one link round trip), its `leadership` is `{ leader: null }`.
 * 3. A follower that cannot adopt its leader's term (it already holds a term as large) sends
 *    its own state to that leader; it also sends it whenever its own state changes, and each
 *    side of a new link sends its state first thing.
 * 4. A leader that hears a term larger than its own, or its own number taken by another
 *    leader, takes a new term by rule 1 (at most once per heartbeat interval) — so two sides
 *    that led separately during a partition end, once healed, with one leader whose term is
 *    above both.
 * Ties: two nodes that become leader apart (a partition without the guard) may pick the same
 * number; rule 4 separates them once they meet. With the quorum guard at a majority, two sides
 * cannot lead at once, so a term is held by one leader only.
 */
export class LeadershipTracker {
  private readonly clock: Clock;
  private readonly logger: LoggerService;
  private readonly limited: RateLimitedLogger;
  private readonly setting: QuorumSetting | undefined;
  private readonly stableMs: number;
  private readonly bumpIntervalMs: number;
  private readonly reference: MajorityReference | undefined;
  private readonly quorumSubject: BehaviorSubject<QuorumState>;
  private readonly leaderSubject: BehaviorSubject<Member | null>;
  private readonly leadershipSubject: BehaviorSubject<Leadership>;
  private readonly claims = new Map<string, Claim>();
  private readonly subscriptions: Subscription[] = [];
  private readonly unregister: (() => void)[] = [];
  /** The leader that took the settled term (null for term 0). */
  private issuer: Issuer | null = null;
  /** Highest term this node has seen anywhere. */
  private highest = 0;
  private lastBumpAt = Number.NEGATIVE_INFINITY;
  private bumpTimer: TimerHandle | undefined;
  private stableTimer: TimerHandle | undefined;
  /** Sorted names of the last reachable view (to notice a change for the stable window). */
  private lastView = '';
  /** The local leader the follower last reported its state to. */
  private reportedTo: Member | null = null;
  private closed = false;

  constructor(
    private readonly membership: Membership,
    options: LeadershipOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? new Logger('ClusterLeadership');
    this.limited = new RateLimitedLogger(this.logger, 10_000, 1024, () => this.clock.now());
    this.setting = options.quorum;
    this.stableMs = options.quorumStableMs ?? 60_000;
    this.bumpIntervalMs = options.heartbeatIntervalMs ?? 1000;
    this.reference =
      this.setting === 'majority' ? new MajorityReference(membership.selfName) : undefined;
    const initial = this.evaluate();
    this.quorumSubject = new BehaviorSubject(initial);
    const leader = initial.ok ? this.candidate() : null;
    this.leaderSubject = new BehaviorSubject<Member | null>(leader);
    const term = leader ? this.newTerm() : 0;
    if (leader) this.issuer = { name: leader.name, incarnation: leader.incarnation };
    this.leadershipSubject = new BehaviorSubject<Leadership>({ leader, term });
    if (this.setting !== undefined && !initial.ok) {
      this.logger.log(
        `quorum guard on (CLUSTER_QUORUM=${this.setting}): no leader until ${initial.required} members are reachable (now ${initial.reachable})`,
      );
    }

    this.subscriptions.push(
      // Every change of the view, a member's state included (reachability), once per turn.
      membership.members$.subscribe(() => this.update()),
      membership.leader$.subscribe({
        next: () => this.update(true),
        complete: () => this.complete(),
      }),
      membership.changes.subscribe((change) => {
        if (change.type === 'learned') return;
        if (change.type === 'leave' && change.reason !== 'replaced')
          this.reference?.left(change.member.name);
        // A new link (a join, or a link back to a member that was unreachable): each side
        // sends its state first thing — what was sent while the link was down is lost.
        if (change.type === 'join' || change.type === 'reachable')
          this.sendState(change.member.name);
        this.update();
      }),
    );
    this.unregister.push(
      membership.onFrame(FrameType.LEADERSHIP, (from, payload) => this.receive(from, payload)),
      membership.onMemberGone((name) => {
        this.claims.delete(name);
      }),
    );
  }

  /** The quorum state: on subscribe, then on every change. */
  get quorum$(): Observable<QuorumState> {
    return this.quorumSubject.asObservable();
  }

  get quorum(): QuorumState {
    return this.quorumSubject.value;
  }

  /** The leader of this node's view, null below quorum: on subscribe, then on every change. */
  get leader$(): Observable<Member | null> {
    return this.leaderSubject.asObservable();
  }

  leader(): Member | null {
    return this.leaderSubject.value;
  }

  /** The agreed leader and its term: on subscribe, then on every change. */
  get leadership$(): Observable<Leadership> {
    return this.leadershipSubject.asObservable();
  }

  leadership(): Leadership {
    return this.leadershipSubject.value;
  }

  /** True when this node leads (quorum held, not superseded). */
  isLeader(): boolean {
    const leader = this.leaderSubject.value;
    return leader !== null && sameProcess(leader, this.membership.self);
  }

  close(): void {
    this.complete();
  }

  // ---- quorum ----------------------------------------------------------------------------

  private evaluate(): QuorumState {
    const view = this.membership
      .members()
      .filter(isReachable)
      .map((m) => m.name);
    if (this.setting === undefined) return noQuorum(view.length);
    if (this.setting !== 'majority') return staticQuorum(this.setting, view.length);
    const reference = this.reference!;
    reference.grow(view);
    const state = reference.evaluate(view);
    this.watchStable(view, state.ok);
    return state;
  }

  /** `'majority'`: rebases the reference once a view with quorum has held for the window. */
  private watchStable(view: string[], ok: boolean): void {
    const key = [...view].sort().join('\n');
    if (key === this.lastView && (this.stableTimer !== undefined || !ok)) return;
    this.lastView = key;
    this.clock.clearTimeout(this.stableTimer);
    this.stableTimer = undefined;
    if (!ok || this.closed) return;
    this.stableTimer = this.clock.setTimeout(() => {
      this.stableTimer = undefined;
      if (this.closed || !this.quorumSubject.value.ok) return;
      const current = this.membership
        .members()
        .filter(isReachable)
        .map((m) => m.name);
      if ([...current].sort().join('\n') !== this.lastView) return;
      if (this.reference!.rebase(current)) {
        this.logger.log(
          `quorum reference is now the ${current.length} members seen for ${this.stableMs} ms`,
        );
        this.update();
      }
    }, this.stableMs);
  }

  private update(fromLeader = false): void {
    if (this.closed) return;
    const quorum = this.evaluate();
    const previous = this.quorumSubject.value;
    if (fromLeader && previous.ok && !quorum.ok && this.reference) {
      // Membership moves its leader before it reports the change: a graceful leave has not
      // left the reference yet. Decide once the change has been seen, later in this turn.
      this.clock.defer(() => this.update());
      return;
    }
    if (!sameQuorum(quorum, previous)) {
      if (quorum.ok !== previous.ok) this.logSide(quorum);
      this.quorumSubject.next(quorum);
    }
    const candidate = quorum.ok ? this.candidate() : null;
    const current = this.leaderSubject.value;
    if (!sameMember(candidate, current)) this.leaderSubject.next(candidate);
    this.settle();
  }

  /** Membership's leader, as the current member object (self's endpoint is set once bound). */
  private candidate(): Member | null {
    const leader = this.membership.leader();
    const self = this.membership.self;
    return leader !== null && sameProcess(leader, self) ? self : leader;
  }

  private logSide(quorum: QuorumState): void {
    const what = `${quorum.reachable} of ${quorum.required} required members reachable (CLUSTER_QUORUM=${String(this.setting)})`;
    if (quorum.ok)
      this.limited.write('log', 'quorum:ok', `quorum held: ${what}; this side may have a leader`);
    else
      this.limited.warn(
        'quorum:lost',
        `quorum lost: ${what}; this node is on the minority side and has no leader until quorum returns`,
      );
  }

  // ---- term ------------------------------------------------------------------------------

  private newTerm(): number {
    const term = Math.max(this.highest + 1, Math.floor(this.clock.wallNow()));
    this.highest = term;
    return term;
  }

  /** Brings the agreed leadership in line with the local leader and the claims heard. */
  private settle(): void {
    const local = this.leaderSubject.value;
    const settled = this.leadershipSubject.value;
    const self = this.membership.self;
    if (local === null) {
      this.setSettled(null, settled.term, this.issuer);
    } else if (sameProcess(local, self)) {
      if (!(settled.leader && sameProcess(settled.leader, self))) {
        this.setSettled(local, this.newTerm(), self);
      } else if (!sameMember(settled.leader, local)) {
        // The same process with a new endpoint (the listener is bound): same term.
        this.setSettled(local, settled.term, this.issuer);
      }
    } else {
      const claim = this.claims.get(local.name);
      const claimsItself =
        claim !== undefined &&
        claim.following &&
        claim.incarnation === local.incarnation &&
        claim.issuer !== null &&
        sameProcess(claim.issuer, local);
      const following = settled.leader !== null && sameProcess(settled.leader, local);
      const fromLocal = this.issuer !== null && sameProcess(this.issuer, local);
      if (
        claimsItself &&
        (claim.term > settled.term || (claim.term === settled.term && fromLocal))
      ) {
        this.setSettled(local, claim.term, claim.issuer);
      } else if (!following) {
        this.setSettled(null, settled.term, this.issuer);
      }
    }
    // A follower tells its (new) leader where it stands, so the leader can outbid old terms.
    if (local !== null && !sameProcess(local, self)) {
      if (!sameMember(local, this.reportedTo)) {
        this.reportedTo = local;
        this.sendState(local.name);
      }
    } else {
      this.reportedTo = null;
    }
  }

  private setSettled(leader: Member | null, term: number, issuer: Issuer | null): void {
    const current = this.leadershipSubject.value;
    const sameIssuer =
      issuer === this.issuer ||
      (issuer !== null && this.issuer !== null && sameProcess(issuer, this.issuer));
    if (sameMember(current.leader, leader) && current.term === term && sameIssuer) return;
    if (term > this.highest) this.highest = term;
    this.issuer = issuer === null ? null : { name: issuer.name, incarnation: issuer.incarnation };
    const changed = !sameMember(current.leader, leader) || current.term !== term;
    if (changed) this.leadershipSubject.next({ leader, term });
    const leads = leader !== null && sameProcess(leader, this.membership.self);
    if (leads) {
      for (const name of this.membership.memberNames()) this.sendState(name);
    } else if (this.reportedTo !== null && this.membership.has(this.reportedTo.name)) {
      this.sendState(this.reportedTo.name);
    }
  }

  private sendState(to: string): void {
    if (this.closed) return;
    const { leader } = this.leadershipSubject.value;
    const issuer = this.issuer;
    const payload = Buffer.from(
      JSON.stringify({
        t: this.leadershipSubject.value.term,
        o: issuer?.name ?? null,
        oi: issuer?.incarnation ?? null,
        f: leader !== null && issuer !== null && sameProcess(leader, issuer),
      }),
    );
    try {
      this.membership.sendFrame(to, FrameType.LEADERSHIP, payload);
    } catch {
      // The member just went: its successor gets the state when it joins.
    }
  }

  private receive(from: string, payload: Buffer): void {
    const member = this.membership.member(from);
    if (!member || this.closed) return;
    const claim = decodeClaim(payload, member.incarnation);
    if (!claim) {
      this.limited.warn(`leadership:${from}`, `malformed leadership state from ${from}; ignored`);
      return;
    }
    this.claims.set(from, claim);
    if (claim.term > this.highest) this.highest = claim.term;
    const self = this.membership.self;
    const settled = this.leadershipSubject.value;
    if (settled.leader !== null && sameProcess(settled.leader, self)) {
      const mine = claim.issuer !== null && sameProcess(claim.issuer, self);
      if (claim.term > settled.term || (claim.term === settled.term && !mine)) this.outbid();
      return;
    }
    const local = this.leaderSubject.value;
    if (local && sameProcess(local, member)) {
      this.settle();
      const after = this.leadershipSubject.value;
      const adopted = after.leader !== null && sameProcess(after.leader, member);
      // Rule 3: the leader's term is not above this node's; tell it, so it takes a larger one.
      if (!adopted && claim.following && claim.issuer !== null && sameProcess(claim.issuer, member))
        this.sendState(from);
    }
  }

  /** Rule 4: a new term for the leader, at most once per heartbeat interval. */
  private outbid(): void {
    if (this.bumpTimer !== undefined || this.closed) return;
    const wait = this.lastBumpAt + this.bumpIntervalMs - this.clock.now();
    const bump = (): void => {
      this.bumpTimer = undefined;
      const settled = this.leadershipSubject.value;
      if (this.closed || !settled.leader || !sameProcess(settled.leader, this.membership.self))
        return;
      this.lastBumpAt = this.clock.now();
      this.setSettled(settled.leader, this.newTerm(), this.membership.self);
    };
    if (wait <= 0) bump();
    else this.bumpTimer = this.clock.setTimeout(bump, wait);
  }

  private complete(): void {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.bumpTimer);
    this.clock.clearTimeout(this.stableTimer);
    for (const s of this.subscriptions) s.unsubscribe();
    for (const u of this.unregister) u();
    this.claims.clear();
    this.quorumSubject.complete();
    this.leaderSubject.complete();
    this.leadershipSubject.complete();
  }
}

function sameMember(a: Member | null, b: Member | null): boolean {
  if (a === null || b === null) return a === b;
  return sameProcess(a, b) && a.endpoint === b.endpoint;
}

function decodeClaim(payload: Buffer, incarnation: string): Claim | undefined {
  if (payload.length > MAX_STATE_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const { t, o, oi, f } = parsed as { t?: unknown; o?: unknown; oi?: unknown; f?: unknown };
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) return undefined;
  if (typeof f !== 'boolean') return undefined;
  if (o === null && oi === null) return { incarnation, term: t, issuer: null, following: false };
  if (typeof o !== 'string' || typeof oi !== 'string' || o.length > 512 || oi.length > 128)
    return undefined;
  return { incarnation, term: t, issuer: { name: o, incarnation: oi }, following: f };
}
