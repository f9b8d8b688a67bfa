import { Controller, Get, type MessageEvent, type OnModuleDestroy, Sse } from '@nestjs/common';
import { debounceTime, interval, map, merge, type Observable, Subject, takeUntil } from 'rxjs';
import { ClusterService } from '../../lib/index.js';
import { type ClusterView, toEventView, toMemberView } from './cluster-view.js';

/** Keeps idle SSE connections open through proxies that drop silent ones. */
const KEEP_ALIVE_MS = 15_000;
/** One change moves both members and leader: send one snapshot for it, not two. */
const SNAPSHOT_COALESCE_MS = 20;

@Controller('cluster')
export class ClusterController implements OnModuleDestroy {
  /** Ends the open streams when the app shuts down, so the HTTP server can close. */
  private readonly closing = new Subject<void>();

  constructor(private readonly cluster: ClusterService) {}

  onModuleDestroy(): void {
    this.closing.next();
    this.closing.complete();
  }

  /**
   * This node, every member (self included), the leader (null below quorum), the quorum guard,
   * the fencing term and the discovery strategy.
   */
  @Get()
  view(): ClusterView {
    const leader = this.cluster.leader()?.name ?? null;
    const topologies = this.cluster.discovery().map((d) => ({
      name: d.topology,
      strategy: String(d.strategy),
      ok: d.ok,
      ...(d.error === undefined ? {} : { error: String(d.error) }),
    }));
    return {
      self: toMemberView(this.cluster.self, leader),
      members: this.cluster
        .members()
        .map((member) => toMemberView(member, leader))
        .sort((a, b) => a.name.localeCompare(b.name)),
      leader,
      quorum: { ...this.cluster.quorum },
      term: this.cluster.leadership().term,
      strategy: topologies.length ? topologies.map((t) => t.strategy).join(',') : 'none',
      mode: this.cluster.mode,
      topologies,
    };
  }

  /**
   * Server-Sent Events: `join`, `leave` and `down` as they happen, and a `members`
   * snapshot (the body of `GET /cluster`) on connect and after every change.
   */
  @Sse('events')
  events(): Observable<MessageEvent> {
    const snapshots = merge(
      this.cluster.members$,
      this.cluster.leader$,
      this.cluster.leadership$,
      this.cluster.quorum$,
    ).pipe(
      debounceTime(SNAPSHOT_COALESCE_MS),
      map((): MessageEvent => ({ type: 'members', data: this.view() })),
    );
    const changes = this.cluster.events$.pipe(
      map((event): MessageEvent => ({ type: event.type, data: toEventView(event) })),
    );
    const keepAlive = interval(KEEP_ALIVE_MS).pipe(
      map((): MessageEvent => ({ comment: 'keep-alive' })),
    );
    return merge(changes, snapshots, keepAlive).pipe(takeUntil(this.closing));
  }
}
