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
