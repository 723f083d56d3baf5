import { isKnownEventType, validateKnownEvent } from '../events/catalogue.ts';
import type { Environment } from '../store/inbox-store.ts';
import type { ProjectedEvent } from './statements.ts';

interface StoredEvent {
  id: string;
  type: string;
  environment: Environment;
  receivedAt: number;
  rawBody: Uint8Array | null;
}

/**
 * A stored event's body as a projection input, or null when it is not a valid event of a known
 * type (an invalid event is never projected).
 */
export function toProjectedEvent(stored: StoredEvent): ProjectedEvent | null {
  if (!isKnownEventType(stored.type) || !stored.rawBody || stored.rawBody.byteLength === 0) return null;
  let envelope: unknown;
  try {
    const body = stored.rawBody;
    envelope = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return null;
  }
  return projectedFrom(stored, envelope);
}

/** The same, from the envelope already parsed (a handler's event): no second parse of the body. */
export function projectedFrom(stored: Omit<StoredEvent, 'rawBody'>, parsed: unknown): ProjectedEvent | null {
  const envelope = parsed as { type?: unknown; created?: unknown; data?: unknown } | null;
  if (!isKnownEventType(stored.type) || typeof envelope !== 'object' || envelope === null) return null;
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
