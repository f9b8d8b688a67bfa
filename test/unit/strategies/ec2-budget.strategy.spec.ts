import { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Ec2Strategy } from '../../../lib/strategies/ec2.strategy.js';
import type { StrategyPeers } from '../../../lib/strategies/strategy.interface.js';
import { FakeEc2Server } from '../../support/fake-ec2-server.js';
import { FakeStrategyContext, fakeMember } from './fake-context.js';

/**
 * The EC2 API budget with several strategies whose contexts share a message bus (what
 * `ctx.peers` is over the cluster's links) and say who leads. Each strategy has its own EC2
 * client with its own access key, so the fake endpoint attributes every call.
 */
const WAIT_MS = 5000;

class Bus {
  private readonly handlers = new Map<string, (payload: unknown, from: string) => void>();
  peers(self: string): StrategyPeers {
    return {
      publish: (payload) => {
        const copy = JSON.parse(JSON.stringify(payload)) as unknown;
        for (const [name, h] of this.handlers) if (name !== self) h(copy, self);
      },
      subscribe: (handler) => {
        this.handlers.set(self, handler);
        return () => this.handlers.delete(self);
      },
    };
  }
}

class SharingContext extends FakeStrategyContext {
  readonly peers: StrategyPeers;
  constructor(
    name: string,
    bus: Bus,
    public leader: boolean,
  ) {
    super({ name }, { members: [fakeMember('oli@10.0.1.99', '10.0.1.99:45893')] });
    this.peers = bus.peers(name);
  }
  isLeader(): boolean {
    return this.leader;
  }
}

describe('Ec2Strategy API budget (leader polls, members share)', () => {
  let ec2: FakeEc2Server;
  let strategies: Ec2Strategy[] = [];
  beforeAll(async () => {
    ec2 = await FakeEc2Server.start({
      instances: [1, 2, 3].map((n) => ({
        instanceId: `i-${n}`,
        privateIpAddress: `10.0.1.${n}`,
        tags: { cluster: 'oli' },
      })),
    });
  });
  afterAll(async () => {
    await ec2.close();
  });
  afterEach(() => {
    for (const s of strategies) s.stop();
    strategies = [];
    ec2.failAll(null);
    ec2.requests.length = 0;
  });

  function start(ctx: SharingContext, key: string, fallbackPollingIntervalMs = 60_000) {
    const client = new EC2Client({
      region: 'eu-west-1',
      endpoint: ec2.url,
      maxAttempts: 1,
      credentials: { accessKeyId: key, secretAccessKey: 'test' },
    });
    const strategy = new Ec2Strategy({
      tagName: 'cluster',
      tagValue: 'oli',
      clusterPort: 45893,
      pollingIntervalMs: 50,
      maxBackoffMs: 200,
      fallbackPollingIntervalMs,
      instanceMetadata: null,
      client,
    });
    strategies.push(strategy);
    return strategy.start(ctx);
  }
  const callsBy = (key: string) =>
    ec2.requestsOf('DescribeInstances').filter((r) => r.accessKeyId === key).length;

  it('only the leader calls DescribeInstances; followers hand over the set it shares', async () => {
    const bus = new Bus();
    const leader = new SharingContext('oli@10.0.1.1', bus, true);
    const followers = [2, 3].map((n) => new SharingContext(`oli@10.0.1.${n}`, bus, false));
    await Promise.all([
      start(leader, 'AKLEADER'),
      ...followers.map((f, i) => start(f, `AKFOLLOW${i}`)),
    ]);
    await leader.waitFor((c) => c.connects.length >= 5, WAIT_MS, 'five leader polls');
    for (const f of followers) {
      await f.waitFor((c) => c.connects.length >= 3, WAIT_MS, 'shared sets');
      expect(f.lastConnectNames).toEqual(['oli@10.0.1.1', 'oli@10.0.1.2', 'oli@10.0.1.3']);
      expect(f.oks.length).toBeGreaterThanOrEqual(3);
    }
    expect(callsBy('AKLEADER')).toBeGreaterThanOrEqual(5);
    expect(callsBy('AKFOLLOW0') + callsBy('AKFOLLOW1')).toBe(0);
  });

  it('a throttled leader backs off and shares the failure: followers show it and do not poll', async () => {
    const bus = new Bus();
    const leader = new SharingContext('oli@10.0.1.1', bus, true);
    const follower = new SharingContext('oli@10.0.1.2', bus, false);
    ec2.failAll('throttle');
    await Promise.all([start(leader, 'AKLEADER'), start(follower, 'AKFOLLOW')]);
    await follower.waitFor((c) => c.errors.length >= 2, WAIT_MS, 'shared errors');
    expect((follower.errors[0] as Error).message).toContain('EC2 API throttled DescribeInstances');
    expect((follower.errors[0] as Error).message).toContain('(polled by oli@10.0.1.1)');
    expect(follower.logger.at('warn').join('\n')).toContain('keeping the current members');
    expect(callsBy('AKFOLLOW')).toBe(0);
    expect(follower.connects).toEqual([]);
    ec2.failAll(null);
    await follower.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'recovery shared');
    expect(
      follower.logger
        .at('log')
        .some((l) =>
          l.includes('EC2 discovery works again (3 instances) — polled by oli@10.0.1.1'),
        ),
    ).toBe(true);
  });

  it('with no result from anyone, a follower polls after its fallback interval and shares it with the others', async () => {
    const bus = new Bus();
    const eager = new SharingContext('oli@10.0.1.2', bus, false);
    const patient = new SharingContext('oli@10.0.1.3', bus, false);
    await Promise.all([start(eager, 'AKEAGER', 300), start(patient, 'AKPATIENT', 60_000)]);
    await patient.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'a shared fallback result');
    expect(callsBy('AKEAGER')).toBeGreaterThanOrEqual(1);
    expect(callsBy('AKPATIENT')).toBe(0);
    expect(patient.lastConnectNames).toEqual(['oli@10.0.1.1', 'oli@10.0.1.2', 'oli@10.0.1.3']);
  });
});
