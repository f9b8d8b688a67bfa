import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { filter, Subscription } from 'rxjs';
import { ClusterService } from './cluster.service.js';
import {
  CLUSTER_EVENT_METADATA,
  CLUSTER_HANDLE_METADATA,
  CLUSTER_SUBSCRIBE_METADATA,
  LEADER_ONLY_METADATA,
} from './decorators/decorator.constants.js';
import { carriesClusterDecorators } from './decorators/append-metadata.js';
import { attachLeaderCheck } from './decorators/leader-only.decorator.js';
import type { ClusterEventType } from './interfaces/member.interface.js';

type Method = (...args: unknown[]) => unknown;

interface DecoratedMethod {
  readonly instance: object;
  readonly method: Method;
  /** `ClassName.methodName`, for logs. */
  readonly label: string;
  readonly events: ClusterEventType[];
  readonly topics: string[];
  readonly handles: string[];
  readonly leaderOnly: boolean;
}

/**
 * Finds the methods of providers and controllers decorated with `@OnClusterEvent()`,
 * `@ClusterSubscribe()`, `@ClusterHandle()` and `@LeaderOnly()` (with Nest's
 * `DiscoveryService` and `MetadataScanner`, as `@nestjs/schedule` does) and wires them to
 * this application's `ClusterService`:
 *
 * - `onModuleInit`: attaches the `ClusterService` to every instance with `@LeaderOnly()`
 *   methods, before any scheduler or application code can call them.
 * - `onApplicationBootstrap`: subscribes event and topic methods, registers request handlers.
 * - `onApplicationShutdown`: unsubscribes and unregisters everything.
 *
 * A throw or rejection in an event or topic method is logged with the method's name and does
 * not stop later deliveries. Request-scoped (non-static) providers cannot be wired and get a
 * warning.
 */
@Injectable()
export class ClusterExplorer
  implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown
{
  private readonly logger = new Logger(ClusterExplorer.name);
  private readonly subscriptions = new Subscription();
  private readonly unregisterHandlers: (() => void)[] = [];
  private methods: DecoratedMethod[] | undefined;

  constructor(
    private readonly cluster: ClusterService,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    const seen = new Set<object>();
    for (const { instance, leaderOnly } of this.explore()) {
      if (!leaderOnly || seen.has(instance)) continue;
      seen.add(instance);
      attachLeaderCheck(instance, this.cluster);
    }
  }

  onApplicationBootstrap(): void {
    for (const decorated of this.explore()) {
      const { instance, method, label } = decorated;
      if (decorated.events.length > 0) {
        const types = decorated.events;
        this.subscriptions.add(
          this.cluster.events$
            .pipe(filter((event) => types.includes(event.type)))
            .subscribe((event) => this.invoke(label, () => method.call(instance, event))),
        );
        this.logger.debug(`${label} receives cluster events: ${types.join(', ')}`);
      }
      for (const topic of decorated.topics) {
        this.subscriptions.add(
          this.cluster
            .subscribe(topic)
            .subscribe((message) => this.invoke(label, () => method.call(instance, message))),
        );
        this.logger.debug(`${label} subscribes to "${topic}"`);
      }
      for (const topic of decorated.handles) {
        this.unregisterHandlers.push(
          this.cluster.handle(topic, (payload: unknown, from: string) =>
            method.call(instance, payload, from),
          ),
        );
        this.logger.debug(`${label} handles requests on "${topic}"`);
      }
    }
  }

  onApplicationShutdown(): void {
    this.subscriptions.unsubscribe();
    for (const unregister of this.unregisterHandlers.splice(0)) unregister();
  }

  /** Every decorated method of every static provider and controller, each instance once. */
  private explore(): DecoratedMethod[] {
    if (this.methods) return this.methods;
    const found: DecoratedMethod[] = [];
    const seen = new Set<object>();
    const wrappers: InstanceWrapper[] = [
      ...this.discovery.getControllers(),
      ...this.discovery.getProviders(),
    ];
    for (const wrapper of wrappers) {
      const instance: unknown = wrapper.instance;
      if (typeof instance !== 'object' || instance === null || seen.has(instance)) continue;
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (!prototype) continue;
      seen.add(instance);
      // Most providers carry no cluster decorator: one metadata read skips their methods.
      if (!carriesClusterDecorators(prototype)) continue;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const method = (instance as Record<string, unknown>)[name];
        if (typeof method !== 'function') continue;
        const decorated = this.read(
          instance,
          method as Method,
          `${instance.constructor.name}.${name}`,
        );
        if (!decorated) continue;
        if (!wrapper.isDependencyTreeStatic()) {
          this.logger.warn(
            `${decorated.label} is in a request-scoped provider: cluster decorators are ignored there`,
          );
          continue;
        }
        found.push(decorated);
      }
    }
    this.methods = found;
    return found;
  }

  private read(instance: object, method: Method, label: string): DecoratedMethod | undefined {
    const events =
      this.reflector.get<ClusterEventType[] | undefined>(CLUSTER_EVENT_METADATA, method) ?? [];
    const topics =
      this.reflector.get<string[] | undefined>(CLUSTER_SUBSCRIBE_METADATA, method) ?? [];
    const handles = this.reflector.get<string[] | undefined>(CLUSTER_HANDLE_METADATA, method) ?? [];
    const leaderOnly =
      this.reflector.get<boolean | undefined>(LEADER_ONLY_METADATA, method) === true;
    if (events.length === 0 && topics.length === 0 && handles.length === 0 && !leaderOnly) {
      return undefined;
    }
    return { instance, method, label, events, topics, handles, leaderOnly };
  }

  private invoke(label: string, call: () => unknown): void {
    try {
      const result = call();
      if (isPromiseLike(result)) {
        result.then(undefined, (error: unknown) => this.reportError(label, error));
      }
    } catch (error) {
      this.reportError(label, error);
    }
  }

  private reportError(label: string, error: unknown): void {
    this.logger.error(
      `${label} failed: ${error instanceof Error ? error.message : String(error)}`,
      error instanceof Error ? error.stack : undefined,
    );
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
