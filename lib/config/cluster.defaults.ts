/**
 * Every default of the module, in one place. Each line says why.
 */
export const CLUSTER_DEFAULTS = Object.freeze({
  /** Node-name prefix when neither NODE_NAME nor APP_NAME is set (Erlang release style). */
  appName: 'app',
  /** Link port: one above libcluster's gossip port, so one security-group range covers both. */
  port: 45893,
  /** Listen on every interface; peers dial the advertised address. */
  bindAddress: '0.0.0.0',
  /** Failure detection checked at 1 s resolution; idle links are probed every timeout − 2 × this (3 s). */
  heartbeatIntervalMs: 1000,
  /** Five seconds of silence before a peer is down: an idle link's 3 s probe plus 2 s for GC pauses and jitter. */
  failureTimeoutMs: 5000,
  /**
   * Three messages within 10 s (Erlang's net_setuptime is 7 s, memberlist's TCP timeout 10 s):
   * a start-up storm delays the accept of a busy peer by seconds, and a handshake given up
   * early is redone at twice the cost. Measured with 100 processes on 2 cores: 5 s → ~600–2,000
   * timeouts and up to 400 needless `down` events per start; 10 s → no handshake timeout in the same runs.
   */
  handshakeTimeoutMs: 10_000,
  /** Room for a whole 200-node cluster dialling one newcomer at once; bounds pre-auth memory to 1 MiB. */
  maxPendingHandshakes: 256,
  /**
   * Per source address once half the pending slots are taken: a flood from one address then
   * holds at most the half it took before, and the other half stays for everyone else.
   */
  maxPendingHandshakesPerSource: 4,
  /** Largest frame: big enough for real payloads, small enough to bound a bad peer's cost. */
  maxFrameBytes: 16 * 1024 * 1024,
  /** Bytes queued to one peer before sends to it fail, so a stuck peer cannot eat the heap. */
  maxWriteBufferBytes: 8 * 1024 * 1024,
  /** libcluster's polling interval for EC2, DNS and the static list. */
  pollingIntervalMs: 5000,
  /** A leaving node waits this long at most for peers to close: a leave must not hold up shutdown. */
  leaveTimeoutMs: 1000,
  /** First redial delay; doubles per failure. */
  reconnectBaseMs: 200,
  /** Redial delay cap: an endpoint that comes back is linked within this. */
  reconnectMaxMs: 5000,
  /**
   * `quorum: 'majority'`: a minute of an unchanged view with quorum before crashed members stop
   * counting — far above failure detection, so only a side that kept the majority rebases.
   */
  quorumStableMs: 60_000,
  /** libcluster's default strategy. */
  strategy: 'gossip',
});
