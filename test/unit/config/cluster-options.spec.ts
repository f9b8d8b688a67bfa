import { describe, expect, it } from 'vitest';
import { clusterOptionsFromEnv } from '../../../lib/config/cluster-options.from-env.js';
import { resolveClusterOptions } from '../../../lib/config/resolve-options.js';
import { problemsOf, resolveFromEnv } from '../../support/config-env.js';

const resolveEnv = (vars: Record<string, string>, host = 'box1') =>
  resolveFromEnv(vars, { env: { HOSTNAME: host } });

const resolveEnvWith = (
  vars: Record<string, string>,
  overrides: Parameters<typeof clusterOptionsFromEnv>[1],
) => resolveFromEnv(vars, { overrides });

describe('clusterOptionsFromEnv', () => {
  it('maps every top-level variable', () => {
    const o = resolveEnv({
      NODE_COOKIE: 'secret',
      NODE_NAME: 'oli@10.0.1.5',
      APP_NAME: 'oli',
      CLUSTER_PORT: '4000',
      CLUSTER_BIND_ADDRESS: '10.0.1.5',
      CLUSTER_ADVERTISE_ADDRESS: '10.0.1.6',
      CLUSTER_HEARTBEAT_INTERVAL_MS: '500',
      CLUSTER_FAILURE_TIMEOUT_MS: '3000',
      LIBCLUSTER_DEBUG: 'true',
    });
    expect(o).toMatchObject({
      mode: 'cluster',
      cookie: 'secret',
      nodeName: 'oli@10.0.1.5',
      appName: 'oli',
      port: 4000,
      bindAddress: '10.0.1.5',
      advertiseAddress: '10.0.1.6',
      heartbeatIntervalMs: 500,
      failureTimeoutMs: 3000,
      debug: true,
    });
  });

  it('accepts the release aliases RELEASE_NODE and RELEASE_NAME', () => {
    expect(resolveEnv({ RELEASE_NODE: 'torus@host-a' }).nodeName).toBe('torus@host-a');
    expect(resolveEnv({ RELEASE_NAME: 'torus' }).nodeName).toBe('torus@box1');
    expect(resolveEnv({ NODE_NAME: 'a@x', RELEASE_NODE: 'b@y' }).nodeName).toBe('a@x');
  });

  it('defaults to gossip with libcluster settings, app@HOSTNAME and single-node without a cookie', () => {
    const o = resolveEnv({});
    expect(o.nodeName).toBe('app@box1');
    expect(o.mode).toBe('single-node');
    expect(o.singleNodeReason).toBe('NODE_COOKIE is not set');
    expect(o.port).toBe(45893);
    expect(o.bindAddress).toBe('0.0.0.0');
    expect(o.advertiseAddress).toBe('box1');
    expect(o.heartbeatIntervalMs).toBe(1000);
    expect(o.failureTimeoutMs).toBe(5000);
    expect(o.topologies).toHaveLength(1);
    expect(o.topologies[0]).toMatchObject({
      name: 'default',
      strategy: 'gossip',
      config: { port: 45892, multicastTtl: 1, broadcastOnly: false },
    });
  });

  it('advertises the first external IPv4 address when the node name has a host name', () => {
    const nic = (address: string, internal: boolean, family: 'IPv4' | 'IPv6' = 'IPv4') =>
      ({ address, internal, family, netmask: '', mac: '', cidr: null }) as never;
    const o = resolveClusterOptions(clusterOptionsFromEnv({}), {
      env: { HOSTNAME: 'web-1' },
      interfaces: () => ({
        lo: [nic('127.0.0.1', true)],
        eth0: [nic('fe80::1', false, 'IPv6'), nic('10.0.1.5', false)],
      }),
    });
    expect(o.nodeName).toBe('app@web-1');
    expect(o.advertiseAddress).toBe('10.0.1.5');
    expect(resolveEnv({ NODE_NAME: 'a@10.9.9.9' }).advertiseAddress).toBe('10.9.9.9');
    expect(resolveEnv({ CLUSTER_BIND_ADDRESS: '10.1.1.1' }).advertiseAddress).toBe('10.1.1.1');
  });

  it('maps the gossip variables', () => {
    const o = resolveEnv({
      NODE_COOKIE: 'c',
      LIBCLUSTER_STRATEGY: 'Cluster.Strategy.Gossip',
      LIBCLUSTER_GOSSIP_PORT: '45999',
      LIBCLUSTER_GOSSIP_IF_ADDR: '127.0.0.1',
      LIBCLUSTER_GOSSIP_MULTICAST_ADDR: '239.1.2.3',
      LIBCLUSTER_GOSSIP_MULTICAST_IF: '127.0.0.1',
      LIBCLUSTER_GOSSIP_MULTICAST_TTL: '0',
      LIBCLUSTER_GOSSIP_BROADCAST_ONLY: 'no',
      LIBCLUSTER_GOSSIP_SECRET: 'g',
    });
    expect(o.topologies[0].config).toMatchObject({
      port: 45999,
      ifAddr: '127.0.0.1',
      multicastAddr: '239.1.2.3',
      multicastIf: '127.0.0.1',
      multicastTtl: 0,
      broadcastOnly: false,
      secret: 'g',
    });
  });

  it('maps the EC2 variables and libcluster_ec2 strategy name', () => {
    const o = resolveEnv({
      NODE_COOKIE: 'c',
      APP_NAME: 'oli',
      LIBCLUSTER_STRATEGY: 'ClusterEC2.Strategy.Tags',
      LIBCLUSTER_EC2_STRATEGY_TAG_NAME: 'app',
      LIBCLUSTER_EC2_STRATEGY_TAG_VALUE: 'torus-prod',
      LIBCLUSTER_EC2_STRATEGY_IP_TYPE: 'public',
      LIBCLUSTER_POLLING_INTERVAL: '2000',
      AWS_REGION: 'us-east-2',
    });
    expect(o.topologies[0]).toMatchObject({
      strategy: 'ec2',
      config: {
        tagName: 'app',
        tagValue: 'torus-prod',
        appPrefix: 'oli',
        ipType: 'public',
        pollingIntervalMs: 2000,
        region: 'us-east-2',
      },
    });
    const prefixed = resolveEnv({
      LIBCLUSTER_STRATEGY: 'ec2',
      LIBCLUSTER_EC2_STRATEGY_TAG_NAME: 'app',
      LIBCLUSTER_EC2_STRATEGY_APP_PREFIX: 'web',
    });
    expect(prefixed.topologies[0].config).toMatchObject({
      appPrefix: 'web',
      ipType: 'private',
      pollingIntervalMs: 5000,
    });
  });

  it('names the node after the instance metadata local-ipv4 with the EC2 strategy', () => {
    const options = clusterOptionsFromEnv({
      APP_NAME: 'oli',
      LIBCLUSTER_STRATEGY: 'ec2',
      LIBCLUSTER_EC2_STRATEGY_TAG_NAME: 'app',
    });
    const o = resolveClusterOptions(options, {
      env: { HOSTNAME: 'ip-10-0-1-5' },
      instanceMetadata: { localIpv4: '10.0.1.5' },
    });
    expect(o.nodeName).toBe('oli@10.0.1.5');
    expect(o.advertiseAddress).toBe('10.0.1.5');
    const down = resolveClusterOptions(options, {
      env: { HOSTNAME: 'ip-10-0-1-5' },
      instanceMetadata: null,
    });
    expect(down.nodeName).toBe('oli@ip-10-0-1-5');
  });

  it('maps the static and DNS variables and their libcluster names', () => {
    const s = resolveEnv({
      LIBCLUSTER_STRATEGY: 'Cluster.Strategy.Epmd',
      LIBCLUSTER_HOSTS: 'a:1, app@b:2 ,c',
    });
    expect(s.topologies[0]).toMatchObject({
      strategy: 'static',
      config: { hosts: ['a:1', 'app@b:2', 'c'] },
    });
    const d = resolveEnv({
      LIBCLUSTER_STRATEGY: 'Elixir.Cluster.Strategy.DNSPoll',
      LIBCLUSTER_DNS_QUERY: 'app.internal',
      LIBCLUSTER_DNS_NODE_BASENAME: 'oli',
      LIBCLUSTER_POLLING_INTERVAL: '1000',
    });
    expect(d.topologies[0]).toMatchObject({
      strategy: 'dns',
      config: { query: 'app.internal', nodeBasename: 'oli', pollingIntervalMs: 1000 },
    });
  });

  it('runs single-node with LIBCLUSTER_STRATEGY=none even with a cookie', () => {
    const o = resolveEnv({ NODE_COOKIE: 'c', LIBCLUSTER_STRATEGY: 'none' });
    expect(o.mode).toBe('single-node');
    expect(o.singleNodeReason).toBe('LIBCLUSTER_STRATEGY is none');
  });

  it('reads through a ConfigService-like get()', () => {
    const values: Record<string, unknown> = { NODE_COOKIE: 'x', CLUSTER_PORT: 4100 };
    const o = resolveClusterOptions(clusterOptionsFromEnv({ get: (k: string) => values[k] }), {
      env: {},
    });
    expect(o.port).toBe(4100);
    expect(o.cookie).toBe('x');
  });

  it('picks a new random incarnation at every start', () => {
    const a = resolveEnv({});
    const b = resolveEnv({});
    expect(a.incarnation).toMatch(/^[0-9a-f]{16}$/);
    expect(a.incarnation).not.toBe(b.incarnation);
  });
});

describe('validation', () => {
  it('reports every problem at once, naming the variable, the value and what is accepted', () => {
    const problems = problemsOf(() =>
      resolveEnv({
        LIBCLUSTER_STRATEGY: 'gossip',
        CLUSTER_PORT: '70000',
        LIBCLUSTER_GOSSIP_MULTICAST_ADDR: '10.0.0.1',
        LIBCLUSTER_GOSSIP_PORT: 'abc',
        LIBCLUSTER_GOSSIP_MULTICAST_TTL: '300',
        LIBCLUSTER_DEBUG: 'maybe',
        NODE_NAME: 'no-at-sign',
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^CLUSTER_PORT: "70000" is not a TCP port \(accepted: an integer from 0 to 65535\)/,
        ),
        expect.stringMatching(
          /^LIBCLUSTER_GOSSIP_MULTICAST_ADDR: "10.0.0.1" is not a multicast address \(accepted: 224.0.0.0 to 239.255.255.255/,
        ),
        expect.stringMatching(/^LIBCLUSTER_GOSSIP_PORT: "abc" is not a UDP port/),
        expect.stringMatching(/^LIBCLUSTER_GOSSIP_MULTICAST_TTL: "300" is not a multicast TTL/),
        expect.stringMatching(/^LIBCLUSTER_DEBUG: "maybe" is not a boolean/),
        expect.stringMatching(/^NODE_NAME: "no-at-sign" is not a node name \(accepted: name@host/),
      ]),
    );
    expect(problems).toHaveLength(6);
  });

  it('rejects an unknown strategy, listing the accepted names', () => {
    const [p] = problemsOf(() => resolveEnv({ LIBCLUSTER_STRATEGY: 'foo' }));
    expect(p).toMatch(
      /^LIBCLUSTER_STRATEGY: "foo" is not a strategy \(accepted: gossip, ec2, static, dns, kubernetes, none, Cluster\.Strategy\.Gossip, ClusterEC2\.Strategy\.Tags, Cluster\.Strategy\.Epmd, Cluster\.Strategy\.DNSPoll, Cluster\.Strategy\.Kubernetes, Cluster\.Strategy\.Kubernetes\.DNS, Cluster\.Strategy\.Kubernetes\.DNSSRV/,
    );
  });

  it('requires the EC2 tag name, the static hosts and the DNS query', () => {
    expect(
      problemsOf(() => resolveEnv({ LIBCLUSTER_STRATEGY: 'ClusterEC2.Strategy.Tags' })),
    ).toEqual([
      expect.stringMatching(/^LIBCLUSTER_EC2_STRATEGY_TAG_NAME: is required by the EC2 strategy/),
    ]);
    expect(problemsOf(() => resolveEnv({ LIBCLUSTER_STRATEGY: 'static' }))).toEqual([
      expect.stringMatching(/^LIBCLUSTER_HOSTS: is required/),
    ]);
    expect(problemsOf(() => resolveEnv({ LIBCLUSTER_STRATEGY: 'dns' }))).toEqual([
      expect.stringMatching(/^LIBCLUSTER_DNS_QUERY: is required/),
    ]);
  });

  it('rejects bad static host entries and bad EC2 ip types', () => {
    const problems = problemsOf(() =>
      resolveEnv({ LIBCLUSTER_STRATEGY: 'static', LIBCLUSTER_HOSTS: 'good:1,bad:99999,@x:1' }),
    );
    expect(problems.length).toBeGreaterThanOrEqual(2);
    for (const p of problems) expect(p).toMatch(/^strategyConfig\.hosts|^LIBCLUSTER_HOSTS/);
    expect(problems.join('\n')).toContain('bad:99999');
    expect(
      problemsOf(() =>
        resolveEnv({
          LIBCLUSTER_STRATEGY: 'ec2',
          LIBCLUSTER_EC2_STRATEGY_TAG_NAME: 't',
          LIBCLUSTER_EC2_STRATEGY_IP_TYPE: 'ipv6',
        }),
      ),
    ).toEqual([
      expect.stringMatching(
        /^LIBCLUSTER_EC2_STRATEGY_IP_TYPE: "ipv6" is not an IP type \(accepted: private, public\)/,
      ),
    ]);
  });

  it('maps CLUSTER_QUORUM (an integer or majority) and CLUSTER_QUORUM_STABLE_MS; unset means no guard', () => {
    expect(resolveEnv({}).quorum).toBeUndefined();
    expect(resolveEnv({ CLUSTER_QUORUM: '3' })).toMatchObject({
      quorum: 3,
      quorumStableMs: 60_000,
    });
    expect(
      resolveEnv({ CLUSTER_QUORUM: ' Majority ', CLUSTER_QUORUM_STABLE_MS: '5000' }),
    ).toMatchObject({ quorum: 'majority', quorumStableMs: 5000 });
    expect(resolveClusterOptions({ quorum: 10_000 }, { env: {} }).quorum).toBe(10_000);
  });

  it.each(['0', '-2', '10001', '99999999', 'maj', '2.5', 'half'])(
    'rejects CLUSTER_QUORUM=%s, naming the variable and the accepted values',
    (raw) => {
      expect(problemsOf(() => resolveEnv({ CLUSTER_QUORUM: raw }))).toEqual([
        `CLUSTER_QUORUM: ${JSON.stringify(raw)} is not a quorum (accepted: an integer from 1 to 10000 — the members a side needs to have a leader — or majority)`,
      ]);
    },
  );

  it('names the option path for a bad quorum set in code', () => {
    expect(problemsOf(() => resolveClusterOptions({ quorum: 0 }, { env: {} }))).toEqual([
      'quorum: 0 is not a quorum (accepted: an integer from 1 to 10000 — the members a side needs to have a leader — or majority)',
    ]);
  });

  it('rejects a failure timeout shorter than two heartbeats, and port 0 with EC2', () => {
    expect(
      problemsOf(() =>
        resolveEnv({ CLUSTER_HEARTBEAT_INTERVAL_MS: '1000', CLUSTER_FAILURE_TIMEOUT_MS: '1500' }),
      ),
    ).toEqual([
      expect.stringMatching(
        /^CLUSTER_FAILURE_TIMEOUT_MS: "1500" must be at least twice the heartbeat interval/,
      ),
    ]);
    expect(
      problemsOf(() =>
        resolveEnv({
          CLUSTER_PORT: '0',
          LIBCLUSTER_STRATEGY: 'ec2',
          LIBCLUSTER_EC2_STRATEGY_TAG_NAME: 't',
        }),
      ),
    ).toEqual([
      expect.stringMatching(
        /^CLUSTER_PORT: 0 \(any free port\) cannot be used with the ec2 strategy/,
      ),
    ]);
  });

  it('names option paths when options come from code', () => {
    const problems = problemsOf(() =>
      resolveClusterOptions({
        port: -1,
        topologies: {
          lan: { strategy: 'gossip', config: { multicastAddr: '1.2.3.4' } },
          aws: { strategy: 'ec2', config: {} as never },
        },
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^port: -1 is not a TCP port/),
        expect.stringMatching(
          /^topologies\.lan\.config\.multicastAddr: "1\.2\.3\.4" is not a multicast address/,
        ),
        expect.stringMatching(/^topologies\.aws\.config\.tagName: is required/),
      ]),
    );
  });

  it('overrides in code: variables named for env values, option paths for code values', () => {
    const env = {
      NODE_COOKIE: 'secret',
      CLUSTER_PORT: '70000',
      CLUSTER_FAILURE_TIMEOUT_MS: 'soon',
      LIBCLUSTER_STRATEGY: 'static',
      LIBCLUSTER_HOSTS: '10.0.1.5',
    };
    const resolve = (options: ReturnType<typeof clusterOptionsFromEnv>) =>
      resolveClusterOptions(options, { env: { HOSTNAME: 'box1' }, interfaces: () => ({}) });
    const problems = problemsOf(() =>
      resolve(
        clusterOptionsFromEnv(env, {
          debug: true,
          heartbeatIntervalMs: 5,
          strategyConfig: { hosts: ['http://x:1/'] },
        }),
      ),
    );
    expect(problems).toEqual([
      'CLUSTER_PORT: "70000" is not a TCP port (accepted: an integer from 0 to 65535)',
      'heartbeatIntervalMs: 5 is not a heartbeat interval in ms (accepted: an integer from 10 to 600000)',
      'CLUSTER_FAILURE_TIMEOUT_MS: "soon" is not a failure timeout in ms (accepted: an integer from 20 to 3600000)',
      'strategyConfig.hosts: "http://x:1/" is not a host entry: a URL where host:port was expected (write x:1) (accepted: host, host:port, name@host:port, [ipv6]:port)',
    ]);
    // The spread the README once showed loses every variable name: the record is not copied.
    const spread = problemsOf(() => resolve({ ...clusterOptionsFromEnv(env), debug: true }));
    expect(spread[0]).toMatch(/^port: 70000 is not a TCP port/);
  });

  it('overrides keep the other env values, merge strategyConfig, and name missing values by path', () => {
    const options = resolveClusterOptions(
      clusterOptionsFromEnv(
        {
          NODE_COOKIE: 'secret',
          LIBCLUSTER_STRATEGY: 'static',
          LIBCLUSTER_HOSTS: '10.0.1.5,10.0.1.6',
          LIBCLUSTER_POLLING_INTERVAL: '2000',
        },
        { debug: true, cookie: undefined, strategyConfig: { pollingIntervalMs: 9000 } },
      ),
      { env: { HOSTNAME: 'box1' }, interfaces: () => ({}) },
    );
    expect(options).toMatchObject({ cookie: 'secret', debug: true });
    expect(options.topologies[0].config).toMatchObject({
      hosts: ['10.0.1.5', '10.0.1.6'],
      pollingIntervalMs: 9000,
    });
    // A strategy set in code drops the environment's strategy config; what it lacks is named
    // by option path, since the operator cannot fix it with a variable.
    expect(
      problemsOf(() =>
        resolveEnvWith(
          { LIBCLUSTER_STRATEGY: 'ec2' },
          { strategy: 'static', strategyConfig: {} as never },
        ),
      ),
    ).toEqual([
      expect.stringMatching(/^strategyConfig\.hosts: is required by the static strategy/),
    ]);
    expect(problemsOf(() => resolveEnvWith({ LIBCLUSTER_STRATEGY: 'static' }, {}))).toEqual([
      expect.stringMatching(/^LIBCLUSTER_HOSTS: is required by the static strategy/),
    ]);
  });

  it('accepts several topologies and custom strategy classes', () => {
    class MyStrategy {
      start() {}
      stop() {}
    }
    const o = resolveClusterOptions({
      cookie: 'c',
      topologies: { lan: { strategy: 'gossip' }, mine: { strategy: MyStrategy, config: { a: 1 } } },
    });
    expect(o.topologies.map((t) => [t.name, t.strategy])).toEqual([
      ['lan', 'gossip'],
      ['mine', 'MyStrategy'],
    ]);
    expect(o.topologies[1].custom).toBe(MyStrategy);
  });

  it('ClusterConfigError lists one NAME: message line per problem', () => {
    try {
      resolveEnv({ CLUSTER_PORT: 'x', LIBCLUSTER_STRATEGY: 'nope' });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toMatch(
        /^Invalid cluster configuration \(2 problems\):\n {2}- CLUSTER_PORT: .*\n {2}- LIBCLUSTER_STRATEGY: /,
      );
    }
  });
});

describe('cookie options', () => {
  const STRONG = 'q3J8v1m2ZkT9yXc0PpLs4wAbCdEf';

  it('a weak cookie gives one warning naming the variable and how to generate one, never the value', () => {
    for (const [cookie, what] of [
      ['change-me', 'is a well-known placeholder'],
      ['short-cookie', 'is shorter than 16 characters'],
    ]) {
      const o = resolveEnv({ NODE_COOKIE: cookie });
      expect(o.mode).toBe('cluster');
      expect(o.cookieWarning).toContain(`NODE_COOKIE ${what}`);
      expect(o.cookieWarning).toContain('openssl rand -base64 32');
      expect(o.cookieWarning).toContain('CLUSTER_REQUIRE_STRONG_COOKIE=true');
      expect(o.cookieWarning).not.toContain(cookie);
    }
    expect(resolveEnv({ NODE_COOKIE: STRONG }).cookieWarning).toBeUndefined();
    // Single-node (no links): nothing to warn about.
    expect(
      resolveEnv({ NODE_COOKIE: 'change-me', LIBCLUSTER_STRATEGY: 'none' }).cookieWarning,
    ).toBeUndefined();
  });

  it('CLUSTER_REQUIRE_STRONG_COOKIE=true makes a weak cookie a configuration error naming NODE_COOKIE', () => {
    expect(
      problemsOf(() =>
        resolveEnv({ NODE_COOKIE: 'change-me', CLUSTER_REQUIRE_STRONG_COOKIE: 'true' }),
      ),
    ).toEqual([
      'NODE_COOKIE: is a well-known placeholder and CLUSTER_REQUIRE_STRONG_COOKIE is true: generate one with `openssl rand -base64 32` and set it on every node',
    ]);
    expect(
      problemsOf(() =>
        resolveClusterOptions({ cookie: 'abc', requireStrongCookie: true }, { env: {} }),
      ),
    ).toEqual([
      'cookie: is shorter than 16 characters and requireStrongCookie is true: generate one with `openssl rand -base64 32` and set it on every node',
    ]);
    const strong = resolveEnv({ NODE_COOKIE: STRONG, CLUSTER_REQUIRE_STRONG_COOKIE: 'true' });
    expect(strong.cookieWarning).toBeUndefined();
    expect(problemsOf(() => resolveEnv({ CLUSTER_REQUIRE_STRONG_COOKIE: 'maybe' }))).toEqual([
      'CLUSTER_REQUIRE_STRONG_COOKIE: "maybe" is not a boolean (accepted: true, false, 1, 0, yes, no)',
    ]);
  });

  it('NODE_COOKIE_PREVIOUS: comma-separated, trimmed, without duplicates or the current cookie', () => {
    const o = resolveEnv({
      NODE_COOKIE: STRONG,
      NODE_COOKIE_PREVIOUS: ` old-one-0123456789, ${STRONG},old-two-0123456789,old-one-0123456789 `,
    });
    expect(o.previousCookies).toEqual(['old-one-0123456789', 'old-two-0123456789']);
    expect(resolveEnv({ NODE_COOKIE: STRONG }).previousCookies).toEqual([]);
    expect(problemsOf(() => resolveEnv({ NODE_COOKIE_PREVIOUS: 'old-one-0123456789' }))).toEqual([
      'NODE_COOKIE_PREVIOUS: is set without NODE_COOKIE: the previous cookies are only accepted beside a current one (set NODE_COOKIE to the new cookie)',
    ]);
  });
});
