import type { ClusterStrategy, StrategyContext } from './strategy.interface.js';
import { prewarmCookieKeys } from '../security/cookie-keyring.js';
import { GossipKeyring, isGossipKeyDerived } from './gossip/gossip-packet.js';
import { emptyDropCounts, GossipSession, type GossipStats } from './gossip/gossip-session.js';
import { GossipOptionsError } from '../errors/gossip-options.error.js';
import {
  MISSING_KEY_PROBLEM,
  resolveGossipSettings,
  type GossipSettings,
  type GossipStrategyConfig,
} from './gossip/gossip-settings.js';

export { GOSSIP_DEFAULTS } from './gossip/gossip-defaults.js';
export type { GossipStats } from './gossip/gossip-session.js';
export type { GossipSocketFactory, GossipStrategyConfig } from './gossip/gossip-settings.js';

/**
 * Discovers the nodes of a cluster by UDP multicast gossip — libcluster's
 * `Cluster.Strategy.Gossip`, with every packet authenticated. The default strategy.
 *
 * **What it does.** Each node joins a multicast group and sends a heartbeat to it at once
 * and then every random interval between `heartbeatMaxMs / 5` and `heartbeatMaxMs`
 * (1–5 s by default; libcluster sends every `:rand.uniform(5_000)` ms); four times
 * slower once every node heard is a member and a round changed nothing. A heartbeat
 * carries the node name, incarnation, start time and link endpoint (`host:port`, so a
 * random `CLUSTER_PORT=0` works). Every node that hears a heartbeat from a node it did not
 * know hands the full set of heard nodes to the core (`ctx.connect`), which links to them,
 * and answers the newcomer at once with a unicast heartbeat, so a new node is linked within
 * milliseconds instead of waiting for the next round. A node not heard for three of the
 * slowest intervals (60 s) is forgotten — unless it is a member: a live link is never dropped
 * because multicast packets were lost.
 *
 * **Authentication.** Packets are sealed with AES-256-GCM under a key derived (scrypt, then
 * HKDF-SHA256) from `secret`, or from the cluster cookie when no secret is set. Each packet
 * names its key by a 4-byte key id: a node reads packets sealed with its current key or a
 * retired one (`previousSecrets`, or the cluster's `previousCookies` when keyed from the
 * cookie), seals only with the current one, and drops a packet whose key id it does not
 * hold before any decryption (about a microsecond). A packet that fails authentication is
 * dropped with a warning, once a minute per sender — which is also how two clusters share
 * one group. A sender timestamp and a random nonce inside the ciphertext
 * stop replays: packets stamped more than ±30 s from the receiver's clock, or with a nonce
 * already seen, are dropped (keep clocks in sync with NTP). A packet claiming this node's
 * own name with another incarnation is ignored. Packet format: `docs/gossip.md`.
 *
 * **Failures never crash the app.** When the socket cannot open (`EADDRINUSE`, `EINVAL`,
 * `EADDRNOTAVAIL`, `ENODEV`…), the strategy logs an error naming the option and
 * environment variable to change, reports it (`ctx.reportError`, shown by health) and
 * retries with capped exponential backoff (1 s doubling to 30 s, ±20 % jitter); once open
 * it reports OK again. Current members are kept meanwhile.
 *
 * **Options** (environment variables of `clusterOptionsFromEnv()` in brackets):
 * - `port` (`LIBCLUSTER_GOSSIP_PORT`) — UDP port of the group. Default `45892`.
 * - `ifAddr` (`LIBCLUSTER_GOSSIP_IF_ADDR`) — address the socket binds. Default `0.0.0.0`;
 *   on Linux only a wildcard bind receives multicast.
 * - `multicastAddr` (`LIBCLUSTER_GOSSIP_MULTICAST_ADDR`) — the group. Default
 *   `233.252.1.32`; with `broadcastOnly`, the broadcast address, default `255.255.255.255`.
 * - `multicastIf` (`LIBCLUSTER_GOSSIP_MULTICAST_IF`) — IPv4 address of the interface that
 *   sends and joins. Default unset (the OS picks by route; set it on multi-homed hosts).
 * - `multicastTtl` (`LIBCLUSTER_GOSSIP_MULTICAST_TTL`) — default `1`: never crosses a router.
 * - `broadcastOnly` (`LIBCLUSTER_GOSSIP_BROADCAST_ONLY`) — send to a broadcast address
 *   instead of joining a group (networks that filter IGMP). Default `false`.
 * - `secret` (`LIBCLUSTER_GOSSIP_SECRET`) — key material. Default: the cluster cookie
 *   (`NODE_COOKIE`). Use a long random value: a captured packet allows offline guessing
 *   (scrypt makes each guess cost tens of milliseconds).
 * - `previousSecrets` (`LIBCLUSTER_GOSSIP_SECRET_PREVIOUS`, comma-separated) — retired
 *   secrets still read during a rotation. Default none.
 * - `heartbeatMaxMs` — upper bound of the heartbeat interval. Default `5000`.
 * - Seams for tests: `now` (clock), `socketFactory`, `openRetryBaseMs`, `openRetryMaxMs`.
 *
 * All defaults are in {@link GOSSIP_DEFAULTS}. Invalid options throw one
 * `GossipOptionsError` listing every problem; a missing secret and cookie is reported by
 * `start()` instead (through `ctx.reportError`), since single-node apps construct it too.
 *
 * **When multicast works:** hosts on one LAN or subnet (a bare-metal or VM network, a
 * single Docker bridge network, several instances on one machine). **When it does not:**
 * most cloud networks — AWS VPC (no multicast without a Transit Gateway multicast domain),
 * ECS `awsvpc`, Kubernetes pod networks, Docker overlay and many Docker setups. There, pick
 * `ec2` (instances by tag), `dns` (a headless service) or `static` (a host list): they
 * need no UDP at all.
 *
 * Several instances on one host share the port (`reuseAddr`); each also sends from a port
 * of its own, so the immediate answer reaches the right instance.
 *
 * @example
 * ```ts
 * ClusterModule.forRoot({
 *   cookie: process.env.NODE_COOKIE,
 *   topologies: {
 *     lan: { strategy: 'gossip', config: { multicastIf: '192.168.1.10', secret: process.env.GOSSIP_SECRET } },
 *   },
 * });
 * // or, like a Torus release: LIBCLUSTER_STRATEGY=Cluster.Strategy.Gossip NODE_COOKIE=… LIBCLUSTER_GOSSIP_MULTICAST_IF=192.168.1.10
 * ```
 */
export class GossipStrategy implements ClusterStrategy {
  private readonly settings: GossipSettings;
  private readonly keyMaterial: { current: string; previous: readonly string[] } | undefined;
  private keys: GossipKeyring | undefined;
  private session: GossipSession | undefined;
  /** Bumped by every `start()` and `stop()`: a start that awaited its keys checks it. */
  private generation = 0;

  /**
   * Validates the options (throws `GossipOptionsError`). A missing secret and cookie is not
   * a constructor error (an app without `NODE_COOKIE` runs single-node and never starts
   * discovery); `start()` reports it instead. The packet keys start deriving here, off the
   * event loop (scrypt: tens of milliseconds, once per secret and process); `start()` uses them.
   */
  constructor(options: GossipStrategyConfig = {}) {
    const { settings, keyMaterial } = resolveGossipSettings(options);
    this.settings = settings;
    this.keyMaterial = keyMaterial;
    // Started now so the keys are likely ready by start() (a head start of the app's init).
    if (keyMaterial) prewarmCookieKeys([keyMaterial.current, ...keyMaterial.previous]);
  }

  /**
   * Opens the socket and sends the first heartbeat. Resolves after the first attempt — or at
   * once while the packet keys are still being derived (the first start in a process; the
   * attempt follows when they are ready); never rejects: a socket that cannot open is
   * reported through `ctx` and retried.
   * Without a secret or cookie it reports a `GossipOptionsError` and does not start.
   * Calling it again while started does nothing.
   */
  async start(ctx: StrategyContext): Promise<void> {
    if (this.session) return;
    if (this.keyMaterial === undefined) {
      const error = new GossipOptionsError([MISSING_KEY_PROBLEM]);
      ctx.logger.error(`gossip: not started: ${MISSING_KEY_PROBLEM}`);
      ctx.reportError(error);
      return;
    }
    const generation = ++this.generation;
    const { current, previous } = this.keyMaterial;
    if (this.keys === undefined && ![current, ...previous].every(isGossipKeyDerived)) {
      // scrypt runs off the event loop, and start-up does not wait for it: the socket opens
      // (and the first heartbeat goes out) once the keys are ready.
      GossipKeyring.fromSecretsAsync(current, previous).then(
        (keys) => {
          this.keys ??= keys;
          if (this.session || generation !== this.generation) return;
          void this.open(ctx, this.keys);
        },
        (error: unknown) => {
          ctx.logger.error(
            `gossip: not started: the packet key could not be derived (${String(error)})`,
          );
          ctx.reportError(error instanceof Error ? error : new Error(String(error)));
        },
      );
      return;
    }
    this.keys ??= GossipKeyring.fromSecrets(current, previous);
    await this.open(ctx, this.keys);
  }

  private async open(ctx: StrategyContext, keys: GossipKeyring): Promise<void> {
    const session = new GossipSession(ctx, this.settings, keys);
    this.session = session;
    await session.open();
  }

  /** Closes the socket and every timer. Idempotent; `start()` may be called again after. */
  stop(): void {
    this.generation++;
    this.session?.close();
    this.session = undefined;
  }

  /** Counters since the last `start()` (all zero when stopped). */
  stats(): GossipStats {
    return this.session?.stats() ?? EMPTY_STATS;
  }
}

const EMPTY_STATS: GossipStats = Object.freeze({
  open: false,
  openAttempts: 0,
  openFailures: 0,
  packetsReceived: 0,
  heartbeatsAccepted: 0,
  acceptedUnderPreviousKey: 0,
  dropped: Object.freeze(emptyDropCounts()),
  heartbeatsSent: 0,
  repliesSent: 0,
  peers: 0,
});
