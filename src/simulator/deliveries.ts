import { randomBytes, randomUUID } from 'node:crypto';
import type { EventType } from '../events/catalogue.ts';
import { examplePayloads } from '../events/examples.ts';
import { sign } from '../signature/sign.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID (time-ordered, 26 Crockford base32 characters). */
export function ulid(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[(bytes[i] ?? 0) % 32];
  return time + rand;
}

/** A signed delivery, ready to POST. */
export interface SimulatedDelivery {
  eventId: string;
  type: string;
  body: string;
  headers: Record<string, string>;
}

/** The guide's example payload of a type, with a fresh event id and `created` time. */
export function freshEvent(
  type: EventType,
  now = Date.now(),
  environment: 'production' | 'sandbox' = 'production',
): Record<string, unknown> {
  const example = examplePayloads[type];
  return {
    ...example,
    id: `evt_${ulid(now)}`,
    created: Math.floor(now / 1000),
    data: { ...example.data },
    metadata: { ...example.metadata, environment },
  };
}

/**
 * Signs a body the way ProcureIQ does and builds its headers. With `badSignature`, the body is
 * signed with a different secret, so the receiver must refuse it.
 */
export function buildDelivery(
  event: Record<string, unknown>,
  secret: string,
  options: { badSignature?: boolean; body?: string } = {},
): SimulatedDelivery {
  const body = options.body ?? JSON.stringify(event);
  const signingSecret = options.badSignature ? `${secret}-wrong` : secret;
  return {
    eventId: String(event.id),
    type: String(event.type),
    body,
    headers: {
      'content-type': 'application/json',
      'x-procureiq-signature': sign(signingSecret, body),
      'x-procureiq-event': String(event.type),
      'x-procureiq-delivery': randomUUID(),
      'x-procureiq-timestamp': String(Math.floor(Date.now() / 1000)),
    },
  };
}
