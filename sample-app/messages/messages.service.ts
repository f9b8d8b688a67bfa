import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type Observable, Subject } from 'rxjs';
import {
  ClusterService,
  ClusterSubscribe,
  type ClusterMessage,
  type PublishResult,
} from '../../lib/index.js';
import { FEATURE_ROLLOUTS_TOPIC } from '../flags/flags.service.js';
import { LEADER_JOB_TOPIC } from '../jobs/digest.job.js';
import { Inbox } from './inbox.js';

/**
 * Cluster topic that carries the messages of `POST /messages`: the message's own topic
 * travels inside, so every node records every message, whatever topic it names.
 */
export const MESSAGES_TOPIC = 'messages';

/** What is published on `MESSAGES_TOPIC`. */
interface MessageEnvelope {
  topic: string;
  payload: unknown;
}

/** A message as `GET /messages` shows it. */
export interface ReceivedMessage {
  topic: string;
  payload: unknown;
  /** Node that published it. */
  from: string;
  /** Sender's clock when it was published (ISO 8601), if the sender sent it. */
  at: string | null;
  /** This node's clock when it arrived (ISO 8601). */
  receivedAt: string;
}

/** Messages kept per topic. */
const MESSAGES_PER_TOPIC = 100;
/** Topics kept; the least recently used one is forgotten first. */
const MAX_TOPICS = 50;

/**
 * Publishes to every node and remembers the last messages this node received: those of
 * `POST /messages`, and the app's own traffic (flag invalidations, leader-job runs).
 */
@Injectable()
export class MessagesService implements OnModuleDestroy {
  private readonly inbox = new Inbox<ReceivedMessage>(MESSAGES_PER_TOPIC, MAX_TOPICS);
  private readonly received = new Subject<ReceivedMessage>();

  /** Messages as they arrive. */
  readonly received$: Observable<ReceivedMessage> = this.received.asObservable();

  constructor(private readonly cluster: ClusterService) {}

  /** Publishes to every member, this node included. */
  publish(topic: string, payload: unknown): PublishResult {
    const envelope: MessageEnvelope = { topic, payload };
    return this.cluster.publish(MESSAGES_TOPIC, envelope);
  }

  /** The last `limit` messages received, oldest first, of one topic or of all. */
  list(topic: string | undefined, limit: number): ReceivedMessage[] {
    return this.inbox.list(topic, limit, (a, b) => a.receivedAt.localeCompare(b.receivedAt));
  }

  @ClusterSubscribe(MESSAGES_TOPIC)
  onMessage({ payload, from, at }: ClusterMessage<Partial<MessageEnvelope> | null>): void {
    if (typeof payload?.topic !== 'string') return; // not from this app's POST /messages
    this.record({ topic: payload.topic, payload: payload.payload, from, at });
  }

  @ClusterSubscribe(FEATURE_ROLLOUTS_TOPIC)
  @ClusterSubscribe(LEADER_JOB_TOPIC)
  onAppMessage(message: ClusterMessage): void {
    this.record(message);
  }

  onModuleDestroy(): void {
    this.received.complete();
  }

  private record({ topic, payload, from, at }: ClusterMessage): void {
    const message: ReceivedMessage = {
      topic,
      payload,
      from,
      at: at === undefined ? null : new Date(at).toISOString(),
      receivedAt: new Date().toISOString(),
    };
    this.inbox.add(message);
    this.received.next(message);
  }
}
