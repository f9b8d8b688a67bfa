import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DnsDiscoveryError } from '../../../lib/errors/dns-discovery.error.js';
import { DnsStrategy, type DnsStrategyConfig } from '../../../lib/strategies/dns.strategy.js';
import { FakeDnsServer } from '../../support/fake-dns-server.js';
import { FakeStrategyContext } from './fake-context.js';

/**
 * The DNS strategy in SRV mode (libcluster's Kubernetes.DNSSRV; Consul, Cloud Map) and in A
 * mode with its own name servers, against a UDP DNS responder on 127.0.0.1, through the
 * real `dns.Resolver`.
 */
const WAIT_MS = 5000;
const SRV = '_cluster._tcp.myapp.shop.svc.cluster.local';
const pod = (i: number) => `myapp-${i}.myapp.shop.svc.cluster.local`;

describe('DnsStrategy against a local DNS server', () => {
  let dns: FakeDnsServer;
  let strategies: DnsStrategy[] = [];
  beforeAll(async () => {
    dns = await FakeDnsServer.start();
  });
  afterAll(async () => {
    await dns.close();
  });
  afterEach(() => {
    for (const s of strategies) s.stop();
    strategies = [];
    dns.a.clear();
    dns.srv.clear();
  });

  function start(config: Partial<DnsStrategyConfig>) {
    const ctx = new FakeStrategyContext({ name: 'myapp@myapp-0.myapp.shop.svc.cluster.local' });
    const strategy = new DnsStrategy({
      query: SRV,
      clusterPort: 45893,
      pollingIntervalMs: 100,
      nameServers: [dns.address],
      ...config,
    });
    strategies.push(strategy);
    strategy.start(ctx);
    return ctx;
  }

  it("SRV: one endpoint per record, at the record's port, named after its target; follows changes", async () => {
    for (const i of [0, 1, 2]) dns.a.set(pod(i), [`10.4.0.${i + 10}`]);
    dns.srv.set(
      SRV,
      [0, 1, 2].map((i) => ({ target: pod(i), port: 4370 + i })),
    );
    const ctx = start({ recordType: 'srv', nodeBasename: 'myapp' });
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first SRV poll');
    expect(ctx.lastConnect).toEqual([
      { host: '10.4.0.10', port: 4370, name: `myapp@${pod(0)}` },
      { host: '10.4.0.11', port: 4371, name: `myapp@${pod(1)}` },
      { host: '10.4.0.12', port: 4372, name: `myapp@${pod(2)}` },
    ]);
    expect(dns.queries).toEqual(
      expect.arrayContaining([
        { name: SRV, type: 33 },
        { name: pod(1), type: 1 },
      ]),
    );

    // A scale-down and a target without an address (skipped, the rest handed over).
    dns.srv.set(SRV, [
      { target: pod(0), port: 4370 },
      { target: 'ghost.myapp.shop.svc.cluster.local', port: 4379 },
    ]);
    await ctx.waitFor(
      (c) => c.lastConnectNames.join() === `myapp@${pod(0)}`,
      WAIT_MS,
      'scale-down',
    );
    expect(ctx.errors).toEqual([]);
  });

  it('SRV name that does not exist: a DnsDiscoveryError, members kept', async () => {
    dns.a.set(pod(0), ['10.4.0.10']);
    dns.srv.set(SRV, [{ target: pod(0), port: 4370 }]);
    const ctx = start({ recordType: 'srv' });
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');
    const handed = ctx.connects.length;
    dns.srv.delete(SRV);
    dns.a.delete(pod(0));
    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'lookup error');
    expect(ctx.errors[0]).toBeInstanceOf(DnsDiscoveryError);
    expect((ctx.errors[0] as Error).message).toContain(`DNS query ${SRV} failed: ENOTFOUND`);
    expect(ctx.connects.length).toBe(handed);
  });

  it('A mode with nameServers asks that server (Cloud Map / ECS style names)', async () => {
    dns.a.set('myapp.shop.local', ['10.5.0.1', '10.5.0.2']);
    const ctx = start({ query: 'myapp.shop.local', nodeBasename: 'oli' });
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first A poll');
    expect(ctx.lastConnectNames).toEqual(['oli@10.5.0.1', 'oli@10.5.0.2']);
    expect(ctx.lastConnect.every((e) => e.port === 45893)).toBe(true);
  });
});
