import { BaseRpcContext } from '@nestjs/microservices';

/** Arguments of a `ClusterContext`: sender, pattern, metadata. */
export type ClusterContextArgs = [
  from: string,
  pattern: string,
  metadata: Record<string, unknown> | undefined,
];

/**
 * The `@Ctx()` of a handler served by `ClusterTransport`:
 *
 * ```ts
 * @MessagePattern('sum')
 * sum(@Payload() data: number[], @Ctx() ctx: ClusterContext) {
 *   this.logger.log(`asked by ${ctx.getFrom()}`);
 * }
 * ```
 */
export class ClusterContext extends BaseRpcContext<ClusterContextArgs> {
  /** Name of the member that sent the request or event. */
  getFrom(): string {
    return this.args[0];
  }

  /** The pattern, as a string. */
  getPattern(): string {
    return this.args[1];
  }

  /** Metadata the client attached (`ClientProxy#setOnDispatchHook`), if any. */
  getMetadata(): Record<string, unknown> | undefined {
    return this.args[2];
  }
}
