import type { NodeIdentity } from '../interfaces/member.interface.js';

/**
 * One length-prefixed field of a MAC or key-derivation transcript: `u32be length | bytes`
 * (the README's link protocol, "Proofs"). Prefixing every field makes the transcript
 * unambiguous: no two different field lists hash alike.
 */
export function field(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([head, bytes]);
}

/** An identity's transcript fields: name, incarnation, startedAt (decimal), endpoint. */
export function identityFields(identity: NodeIdentity): Buffer[] {
  return [
    field(identity.name),
    field(identity.incarnation),
    field(String(identity.startedAt)),
    field(identity.endpoint),
  ];
}
