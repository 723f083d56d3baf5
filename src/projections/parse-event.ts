import { isKnownEventType, validateKnownEvent } from '../events/catalogue.ts';
import type { Environment } from '../store/inbox-store.ts';
import type { ProjectedEvent } from './statements.ts';

/**
 * A stored event's body as a projection input, or null when it is not a valid event of a known
 * type (an invalid event is never projected).
 */
export function toProjectedEvent(stored: {
  id: string;
  type: string;
  environment: Environment;
  receivedAt: number;
  rawBody: Uint8Array | null;
}): ProjectedEvent | null {
  if (!isKnownEventType(stored.type) || !stored.rawBody || stored.rawBody.byteLength === 0) return null;
  let envelope: { type?: unknown; created?: unknown; data?: unknown };
  try {
    envelope = JSON.parse(Buffer.from(stored.rawBody).toString('utf8')) as typeof envelope;
  } catch {
    return null;
  }
  if (envelope.type !== stored.type || validateKnownEvent(envelope as { type: string }) !== null) return null;
  return {
    id: stored.id,
    type: stored.type,
    created: envelope.created as number,
    environment: stored.environment,
    receivedAt: stored.receivedAt,
    data: envelope.data as Record<string, unknown>,
  };
}
