import {
  type ArgumentsHost,
  Catch,
  type CallHandler,
  type CanActivate,
  Controller,
  type ExecutionContext,
  type INestApplication,
  Injectable,
  type NestInterceptor,
  type PipeTransform,
  type RpcExceptionFilter,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import {
  ClientProxy,
  ClientsModule,
  EventPattern,
  MessagePattern,
  Payload,
  RpcException,
  Transport,
} from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, map, of, throwError, toArray, type Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterModule, ClusterService, PayloadError } from '../../lib/index.js';
import {
  ClusterClientProxy,
  ClusterTransport,
  NoPatternHandlerError,
} from '../../lib/microservices/index.js';
import { freePorts, pollUntil } from '../support/node-process.js';

/**
 * The cluster transport against Nest's built-in TCP transport, on the same handlers:
 * interceptors, pipes, guards and exception filters must give the caller the same results
 * and errors over both. Two apps in this process, linked over real cluster links on
 * 127.0.0.1; app A serves the handlers on both transports, app B on the cluster one only.
 */
@Injectable()
class PositivePipe implements PipeTransform {
  transform(value: unknown): unknown {
    if (typeof value !== 'number' || value <= 0)
      throw new RpcException({ code: 'NOT_POSITIVE', value });
    return value;
  }
}

@Injectable()
class EvenOnlyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToRpc().getData<number>() % 2 === 0;
  }
}

@Injectable()
class WrapInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler<unknown>): Observable<unknown> {
    return next.handle().pipe(map((value) => ({ wrapped: value })));
  }
}

@Catch(RangeError)
class RangeFilter implements RpcExceptionFilter<RangeError> {
  catch(exception: RangeError, _host: ArgumentsHost): Observable<never> {
    return throwError(() => ({ code: 'RANGE', message: exception.message }));
  }
}

/** Events received, per app. */
@Injectable()
class EventLog {
  readonly events: unknown[] = [];
}

@Controller()
class MathHandlers {
  constructor(
    private readonly cluster: ClusterService,
    private readonly log: EventLog,
  ) {}

  @MessagePattern('double')
  double(@Payload(PositivePipe) n: number): number {
    return n * 2;
  }

  @MessagePattern('even')
  @UseGuards(EvenOnlyGuard)
  even(@Payload() n: number): string {
    return `${n} is even`;
  }

  @MessagePattern('wrapped')
  @UseInterceptors(WrapInterceptor)
  wrapped(@Payload() value: unknown): unknown {
    return value;
  }

  @MessagePattern('range')
  @UseFilters(RangeFilter)
  range(): never {
    throw new RangeError('too far');
  }

  @MessagePattern('plain-error')
  plainError(): never {
    throw new Error('secret internals');
  }

  @MessagePattern('rpc-error')
  rpcError(@Payload() message: string): never {
    throw new RpcException(message);
  }

  @MessagePattern('stream')
  stream(): Observable<number> {
    return of(1, 2, 3);
  }

  @MessagePattern({ cmd: 'object-pattern', v: 1 })
  objectPattern(@Payload() data: unknown): unknown {
    return { got: data };
  }

  @MessagePattern('where')
  where(): string {
    return this.cluster.self.name;
  }

  @EventPattern('noted')
  noted(@Payload() data: unknown): void {
    this.log.events.push(data);
  }
}

const TCP = 'TCP_CLIENT';
const CLUSTER = 'CLUSTER_CLIENT';

async function startApp(
  name: string,
  linkPorts: number[],
  index: number,
  tcpPort?: number,
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ClusterModule.forRoot({
        nodeName: `${name}@127.0.0.1`,
        cookie: 'microservices-e2e-cookie',
        bindAddress: '127.0.0.1',
        advertiseAddress: '127.0.0.1',
        port: linkPorts[index],
        heartbeatIntervalMs: 200,
        failureTimeoutMs: 1500,
        strategy: 'static',
        strategyConfig: { hosts: linkPorts.map((p) => `127.0.0.1:${p}`), pollingIntervalMs: 300 },
        isGlobal: true,
      }),
      ClientsModule.registerAsync([
        ...(tcpPort === undefined
          ? []
          : [
              {
                name: TCP,
                useFactory: () => ({
                  transport: Transport.TCP as const,
                  options: { host: '127.0.0.1', port: tcpPort },
                }),
              },
            ]),
        {
          name: CLUSTER,
          inject: [ClusterService],
          useFactory: (cluster: ClusterService) => ({
            customClass: ClusterClientProxy,
            options: { cluster, timeoutMs: 2000 },
          }),
        },
      ]),
    ],
    controllers: [MathHandlers],
    providers: [EventLog],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  app.connectMicroservice(
    { strategy: new ClusterTransport(app.get(ClusterService)) },
    { inheritAppConfig: true },
  );
  if (tcpPort !== undefined) {
    app.connectMicroservice(
      { transport: Transport.TCP, options: { host: '127.0.0.1', port: tcpPort } },
      { inheritAppConfig: true },
    );
  }
  await app.startAllMicroservices();
  await app.init();
  return app;
}

type Outcome = { values: unknown[] } | { error: unknown };

async function outcome(client: ClientProxy, pattern: unknown, data: unknown): Promise<Outcome> {
  try {
    return { values: await lastValueFrom(client.send(pattern, data).pipe(toArray())) };
  } catch (error) {
    return { error: error instanceof Error ? { name: error.name, message: error.message } : error };
  }
}

describe('ClusterTransport + ClusterClientProxy, compared with the built-in TCP transport', () => {
  let a: INestApplication;
  let b: INestApplication;
  let tcp: ClientProxy;
  let cluster: ClientProxy;

  beforeAll(async () => {
    const [p1, p2, tcpPort] = await freePorts(3);
    a = await startApp('a', [p1, p2], 0, tcpPort);
    b = await startApp('b', [p1, p2], 1);
    await a.get(ClusterService).waitForMembers(2, { timeoutMs: 10_000 });
    await b.get(ClusterService).waitForMembers(2, { timeoutMs: 10_000 });
    tcp = a.get(TCP);
    cluster = a.get(CLUSTER);
    await cluster.connect();
    // Both members' patterns are known once connect() resolves (or soon after B's join).
    const both = await pollUntil(
      () => (cluster as ClusterClientProxy).membersHandling('where').length === 2,
      5_000,
    );
    expect(both).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  const cases: [string, unknown, unknown][] = [
    ['pipe passes', 'double', 21],
    ['pipe rejects (RpcException with an object)', 'double', -1],
    ['guard allows', 'even', 4],
    ['guard denies', 'even', 3],
    ['interceptor maps the result', 'wrapped', { x: [1, 'two'] }],
    ['exception filter of the handler', 'range', {}],
    ['plain Error: the default filter hides it', 'plain-error', {}],
    ['RpcException with a string', 'rpc-error', 'no such account'],
    ['an Observable handler: every value', 'stream', {}],
    ['object pattern', { v: 1, cmd: 'object-pattern' }, 'hi'],
  ];

  it.each(cases)('%s: same outcome as TCP', async (_label, pattern, data) => {
    const viaTcp = await outcome(tcp, pattern, data);
    // Twice: once on each member (round-robin).
    const viaCluster = [
      await outcome(cluster, pattern, data),
      await outcome(cluster, pattern, data),
    ];
    expect(viaCluster[0]).toEqual(viaTcp);
    expect(viaCluster[1]).toEqual(viaTcp);
  });

  it('what those outcomes are (so that "same as TCP" is not "both broken")', async () => {
    expect(await outcome(cluster, 'double', 21)).toEqual({ values: [42] });
    expect(await outcome(cluster, 'double', -1)).toEqual({
      error: { code: 'NOT_POSITIVE', value: -1 },
    });
    expect(await outcome(cluster, 'even', 3)).toEqual({
      error: { status: 'error', message: 'Forbidden resource' },
    });
    expect(await outcome(cluster, 'wrapped', 5)).toEqual({ values: [{ wrapped: 5 }] });
    expect(await outcome(cluster, 'range', {})).toEqual({
      error: { code: 'RANGE', message: 'too far' },
    });
    expect(await outcome(cluster, 'rpc-error', 'nope')).toEqual({
      error: { status: 'error', message: 'nope' },
    });
    expect(await outcome(cluster, 'stream', {})).toEqual({ values: [1, 2, 3] });
    expect(await outcome(cluster, 'plain-error', {})).toEqual({
      error: { status: 'error', message: 'Internal server error' },
    });
    expect(await outcome(cluster, 'stream', null)).toEqual({
      error: { name: 'Error', message: 'The invalid data or message pattern (undefined/null)' },
    });
  });

  it('send is spread over both members', async () => {
    const answered = new Set<string>();
    for (let k = 0; k < 4; k++)
      answered.add(await firstValueFrom(cluster.send<string>('where', {})));
    expect([...answered].sort()).toEqual(['a@127.0.0.1', 'b@127.0.0.1']);
  });

  it('emit reaches the @EventPattern handler of both apps once', async () => {
    const tag = { tag: `e-${Date.now()}` };
    await lastValueFrom(cluster.emit<unknown>('noted', tag), { defaultValue: undefined });
    const logA = a.get(EventLog).events;
    const logB = b.get(EventLog).events;
    expect(await pollUntil(() => logA.length >= 1 && logB.length >= 1, 5_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(logA).toEqual([tag]);
    expect(logB).toEqual([tag]);
  });

  describe('bad input: a clear error to the caller, nothing sent, the transport keeps working', () => {
    it('a 10 MB payload: PayloadError (too-large)', async () => {
      const error = await firstValueFrom(
        cluster.send<unknown>('double', 'x'.repeat(10 * 1024 * 1024)),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayloadError);
      expect((error as PayloadError).reason).toBe('too-large');
      const emitted = await lastValueFrom(
        cluster.emit<unknown>('noted', 'y'.repeat(10 * 1024 * 1024)),
      ).catch((e: unknown) => e);
      expect(emitted).toBeInstanceOf(PayloadError);
    });

    it('a non-serialisable payload (BigInt, a cycle): PayloadError (not-encodable)', async () => {
      const bigint = await firstValueFrom(cluster.send<unknown>('double', { n: 10n })).catch(
        (e: unknown) => e,
      );
      expect(bigint).toBeInstanceOf(PayloadError);
      expect((bigint as PayloadError).reason).toBe('not-encodable');
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const cycle = await lastValueFrom(cluster.emit<unknown>('noted', cyclic)).catch(
        (e: unknown) => e,
      );
      expect(cycle).toBeInstanceOf(PayloadError);
    });

    it('a pattern nobody handles: NoPatternHandlerError at once', async () => {
      const error = await firstValueFrom(cluster.send<unknown>('nobody', 1)).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(NoPatternHandlerError);
      expect((error as Error).message).toContain('"nobody"');
    });

    it('after all that, requests are answered as before', async () => {
      expect(await firstValueFrom(cluster.send<unknown>('double', 2))).toBe(4);
      expect(a.get(EventLog).events.filter((e) => typeof e === 'string')).toEqual([]);
    });
  });

  it('a member that closes its app: the client stops sending it requests', async () => {
    await b.close();
    await a.get(ClusterService).waitForMembers(1, { timeoutMs: 5_000 });
    expect(
      await pollUntil(
        () => (cluster as ClusterClientProxy).membersHandling('where').length === 1,
        5_000,
      ),
    ).toBe(true);
    for (let k = 0; k < 3; k++)
      expect(await firstValueFrom(cluster.send<unknown>('where', {}))).toBe('a@127.0.0.1');
  });
});
