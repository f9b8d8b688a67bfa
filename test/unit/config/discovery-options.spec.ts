import { describe, expect, it } from 'vitest';
import { clusterOptionsFromEnv } from '../../../lib/config/cluster-options.from-env.js';
import { resolveClusterOptions } from '../../../lib/config/resolve-options.js';
import { problemsOf, resolveFromEnv } from '../../support/config-env.js';

const K8S_ENV = {
  KUBERNETES_SERVICE_HOST: '10.96.0.1',
  KUBERNETES_SERVICE_PORT: '443',
  HOSTNAME: 'myapp-0',
};

const resolveEnv = (vars: Record<string, string>, env: Record<string, string> = K8S_ENV) =>
  resolveFromEnv(vars, { env });

describe('Kubernetes variables', () => {
  it("maps every LIBCLUSTER_KUBERNETES_* variable under libcluster's strategy name", () => {
    const o = resolveEnv({
      NODE_COOKIE: 'c',
      LIBCLUSTER_STRATEGY: 'Elixir.Cluster.Strategy.Kubernetes',
      LIBCLUSTER_KUBERNETES_SELECTOR: 'app=myapp,tier!=db',
      LIBCLUSTER_KUBERNETES_NODE_BASENAME: 'myapp',
      LIBCLUSTER_KUBERNETES_NAMESPACE: 'shop',
      LIBCLUSTER_KUBERNETES_IP_LOOKUP_MODE: 'pods',
      LIBCLUSTER_KUBERNETES_MODE: 'hostname',
      LIBCLUSTER_KUBERNETES_SERVICE_NAME: 'myapp-headless',
      LIBCLUSTER_KUBERNETES_CLUSTER_DOMAIN: 'corp.example',
      LIBCLUSTER_KUBERNETES_INCLUDE_NOT_READY: 'true',
      LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH: '/tmp/sa',
      LIBCLUSTER_POLLING_INTERVAL: '2000',
    });
    expect(o.topologies[0]).toMatchObject({
      strategy: 'kubernetes',
      config: {
        selector: 'app=myapp,tier!=db',
        nodeBasename: 'myapp',
        namespace: 'shop',
        ipLookupMode: 'pods',
        mode: 'hostname',
        serviceName: 'myapp-headless',
        clusterDomain: 'corp.example',
        includeNotReady: true,
        serviceAccountPath: '/tmp/sa',
        pollingIntervalMs: 2000,
        watch: true,
      },
    });
    const d = resolveEnv({
      LIBCLUSTER_STRATEGY: 'kubernetes',
      LIBCLUSTER_KUBERNETES_SELECTOR: 'app=x',
    });
    expect(d.topologies[0].config).toMatchObject({
      ipLookupMode: 'endpoints',
      mode: 'ip',
      includeNotReady: false,
      nodeBasename: 'app',
    });
  });

  it('reports a selector syntax error, a bad namespace and bad modes, naming each variable', () => {
    const problems = problemsOf(() =>
      resolveEnv({
        LIBCLUSTER_STRATEGY: 'kubernetes',
        LIBCLUSTER_KUBERNETES_SELECTOR: 'app=my app',
        LIBCLUSTER_KUBERNETES_NAMESPACE: 'Shop_Prod',
        LIBCLUSTER_KUBERNETES_IP_LOOKUP_MODE: 'endpoint',
        LIBCLUSTER_KUBERNETES_MODE: 'fqdn',
        LIBCLUSTER_KUBERNETES_INCLUDE_NOT_READY: 'perhaps',
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^LIBCLUSTER_KUBERNETES_IP_LOOKUP_MODE: "endpoint" is not an IP lookup mode \(accepted: endpoints, pods\)/,
      ),
      expect.stringMatching(
        /^LIBCLUSTER_KUBERNETES_SELECTOR: "app=my app" is not a label selector: .*requirement "app=my app".*\(accepted: key=value/,
      ),
      expect.stringMatching(
        /^LIBCLUSTER_KUBERNETES_NAMESPACE: "Shop_Prod" is not a namespace name/,
      ),
      expect.stringMatching(
        /^LIBCLUSTER_KUBERNETES_MODE: "fqdn" is not a naming mode \(accepted: ip, dns, hostname\)/,
      ),
      expect.stringMatching(/^LIBCLUSTER_KUBERNETES_INCLUDE_NOT_READY: "perhaps" is not a boolean/),
    ]);
  });

  it('requires a selector (unless a service name is given) and the API address outside a pod', () => {
    expect(
      problemsOf(() => resolveEnv({ LIBCLUSTER_STRATEGY: 'kubernetes' }, { HOSTNAME: 'laptop' })),
    ).toEqual([
      expect.stringMatching(
        /^LIBCLUSTER_KUBERNETES_SELECTOR: is required by the Kubernetes strategy/,
      ),
      expect.stringMatching(
        /^KUBERNETES_SERVICE_HOST: is not set: the Kubernetes strategy reaches the API server/,
      ),
    ]);
    const bySvc = resolveEnv({
      LIBCLUSTER_STRATEGY: 'kubernetes',
      LIBCLUSTER_KUBERNETES_SERVICE_NAME: 'myapp',
    });
    expect(bySvc.topologies[0].config).toMatchObject({
      serviceName: 'myapp',
      selector: undefined,
    });
    expect(
      problemsOf(() =>
        resolveEnv(
          { LIBCLUSTER_STRATEGY: 'kubernetes', LIBCLUSTER_KUBERNETES_SELECTOR: 'a=b' },
          { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: 'https' },
        ),
      ),
    ).toEqual([expect.stringMatching(/^KUBERNETES_SERVICE_PORT: "https" is not a TCP port/)]);
  });
});

describe('DNS SRV variables', () => {
  it('Cluster.Strategy.Kubernetes.DNSSRV is the DNS strategy in SRV mode; Kubernetes.DNS is DNS poll', () => {
    const srv = resolveEnv({
      NODE_COOKIE: 'c',
      LIBCLUSTER_STRATEGY: 'Cluster.Strategy.Kubernetes.DNSSRV',
      LIBCLUSTER_DNS_QUERY: '_cluster._tcp.myapp.shop.svc.cluster.local',
      CLUSTER_PORT: '0',
    });
    expect(srv.topologies[0]).toMatchObject({
      strategy: 'dns',
      config: { recordType: 'srv', query: '_cluster._tcp.myapp.shop.svc.cluster.local' },
    });
    expect(srv.port).toBe(0); // SRV records carry the port
    const a = resolveEnv({
      LIBCLUSTER_STRATEGY: 'Cluster.Strategy.Kubernetes.DNS',
      LIBCLUSTER_DNS_QUERY: 'myapp-headless',
    });
    expect(a.topologies[0]).toMatchObject({ strategy: 'dns', config: { recordType: 'a' } });
    const servers = resolveEnv({
      LIBCLUSTER_STRATEGY: 'dns',
      LIBCLUSTER_DNS_QUERY: 'q',
      LIBCLUSTER_DNS_RECORD_TYPE: 'SRV',
      LIBCLUSTER_DNS_SERVERS: '127.0.0.1:8600, [::1]:53',
    });
    expect(servers.topologies[0].config).toMatchObject({
      recordType: 'srv',
      nameServers: ['127.0.0.1:8600', '[::1]:53'],
    });
  });

  it('rejects a bad record type and bad DNS servers', () => {
    expect(
      problemsOf(() =>
        resolveEnv({
          LIBCLUSTER_STRATEGY: 'dns',
          LIBCLUSTER_DNS_QUERY: 'q',
          LIBCLUSTER_DNS_RECORD_TYPE: 'mx',
          LIBCLUSTER_DNS_SERVERS: 'dns.google',
        }),
      ),
    ).toEqual([
      expect.stringMatching(
        /^LIBCLUSTER_DNS_RECORD_TYPE: "mx" is not a DNS record type \(accepted: a, srv\)/,
      ),
      expect.stringMatching(/^LIBCLUSTER_DNS_SERVERS: "dns.google" is not a DNS server address/),
    ]);
  });
});

describe('Torus node names', () => {
  it("with the EC2 strategy and no APP_NAME, the node's own prefix is LIBCLUSTER_EC2_STRATEGY_APP_PREFIX", () => {
    const vars = {
      NODE_COOKIE: 'c',
      LIBCLUSTER_STRATEGY: 'ClusterEC2.Strategy.Tags',
      LIBCLUSTER_EC2_STRATEGY_TAG_NAME: 'app',
      LIBCLUSTER_EC2_STRATEGY_APP_PREFIX: 'oli',
    };
    const o = resolveClusterOptions(clusterOptionsFromEnv(vars), {
      env: { HOSTNAME: 'ip-10-0-1-5' },
      instanceMetadata: { localIpv4: '10.0.1.5' },
    });
    expect(o.nodeName).toBe('oli@10.0.1.5');
    expect(o.topologies[0].config).toMatchObject({ appPrefix: 'oli' });
    // APP_NAME, when set, still names the node; RELEASE_NAME too.
    const named = resolveClusterOptions(clusterOptionsFromEnv({ ...vars, RELEASE_NAME: 'torus' }), {
      env: {},
      instanceMetadata: { localIpv4: '10.0.1.5' },
    });
    expect(named.nodeName).toBe('torus@10.0.1.5');
    expect(named.topologies[0].config).toMatchObject({ appPrefix: 'oli' });
    // Without the prefix, the default app name as before.
    const plain = resolveClusterOptions(
      clusterOptionsFromEnv({ ...vars, LIBCLUSTER_EC2_STRATEGY_APP_PREFIX: '' }),
      { env: {}, instanceMetadata: { localIpv4: '10.0.1.5' } },
    );
    expect(plain.nodeName).toBe('app@10.0.1.5');
  });
});
