import type { NodeIdentity } from '../interfaces/member.interface.js';

/**
 * Identity is (name, incarnation, endpoint): a name alone does not tell a restart from the
 * process it replaced, and an endpoint alone does not tell which process listens there now.
 * These are the only comparisons the core makes.
 */

/** Same process: same name and same incarnation. */
export function sameProcess(
  a: Pick<NodeIdentity, 'name' | 'incarnation'>,
  b: Pick<NodeIdentity, 'name' | 'incarnation'>,
): boolean {
  return a.name === b.name && a.incarnation === b.incarnation;
}

/**
 * Negative when `a` is older than `b`: earliest `startedAt`, then name, then incarnation. The
 * oldest member leads; of two incarnations of one name the younger is the live one.
 */
export function compareAge(a: NodeIdentity, b: NodeIdentity): number {
  if (a.startedAt !== b.startedAt) return a.startedAt - b.startedAt;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.incarnation < b.incarnation ? -1 : a.incarnation > b.incarnation ? 1 : 0;
}

/** `name (incarnation …, at endpoint)` for logs. */
export function describeIdentity(identity: NodeIdentity): string {
  return `${identity.name} (incarnation ${identity.incarnation}${identity.endpoint ? `, at ${identity.endpoint}` : ''})`;
}

/**
 * True when, of the two nodes `self` and `peer`, `self` dials first (and its link is the one
 * both ends keep when two cross). The order is per pair, not global: FNV-1a (32 bit) of
 * `self + "\n" + peer` against that of `peer + "\n" + self`, the smaller first, ties by name.
 * Both ends compute the same answer, and each node dials about half of its peers — a global
 * order would make the node whose name sorts first dial the whole cluster during a start-up.
 */
export function dialsFirst(self: string, peer: string): boolean {
  const mine = fnv1a(`${self}\n${peer}`);
  const theirs = fnv1a(`${peer}\n${self}`);
  return mine !== theirs ? mine < theirs : self < peer;
}

/** FNV-1a, 32 bit, over the UTF-16 code units of `text`. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
