// `node --import ./bench/workers/aws-module-hooks.mjs …`: records every ES module whose URL is
// under node_modules/@aws-sdk/ in globalThis.__awsModulesSeen (a Set of URLs), through a
// module resolve hook (node:module register; the hook runs on the loader thread and posts
// each URL back).
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

const seen = new Set();
globalThis.__awsModulesSeen = seen;
const { port1, port2 } = new MessageChannel();
port1.on('message', (url) => seen.add(url));
port1.unref();

const hook = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.includes('/@aws-sdk/')) port.postMessage(result.url);
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`, {
  data: { port: port2 },
  transferList: [port2],
});
