// One Moleculer node: TCP transporter with UDP discovery (multicast 239.0.0.0, the
// transporter's default), events for messaging. Profiles:
//   defaults  transporter "TCP" as shipped (UDP discovery every 30 s, gossip every 2 s)
//   matched   UDP discovery and gossip every 1 s, heartbeat 1 s / timeout 5 s
import { ServiceBroker } from 'moleculer';
import { env, runWorker } from './common.mjs';

let broker;

await runWorker({
  async start(ctx) {
    const udpPort = Number(env('BENCH_UDP_PORT', '4445'));
    const transporterOptions =
      ctx.profile === 'matched' ? { udpPort, udpPeriod: 1, gossipPeriod: 1 } : { udpPort };
    broker = new ServiceBroker({
      namespace: ctx.cluster,
      nodeID: ctx.name,
      logger: false,
      transporter: { type: 'TCP', options: transporterOptions },
      ...(ctx.profile === 'matched' ? { heartbeatInterval: 1, heartbeatTimeout: 5 } : {}),
    });
    broker.localBus.on('$node.connected', ({ node }) => ctx.added(node.id));
    broker.localBus.on('$node.disconnected', ({ node, unexpected }) =>
      ctx.removed(node.id, unexpected ? 'down' : 'leave'),
    );
    broker.createService({
      name: `sink-${ctx.name}`,
      events: {
        // Moleculer passes the payload first unless the parameter is named `ctx`.
        'bench.msg'(payload) {
          ctx.message(payload.d);
        },
      },
    });
    await broker.start();
  },
  publish(text, to) {
    // Event to the receiving node's service group only (not to the sender's own listener).
    broker.emit('bench.msg', { d: text }, { groups: [`sink-${to}`] });
  },
  async stop() {
    await broker?.stop();
  },
});
