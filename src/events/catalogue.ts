import { z } from 'zod';
import type { envelopeSchema } from './envelope.ts';
import {
  adEvents,
  orderEvents,
  paymentEvents,
  productEvents,
  searchEvents,
  supportEvents,
  userEvents,
} from './families.ts';

/** Every event schema of the ProcureIQ catalogue. */
export const eventSchemas = [
  ...searchEvents,
  ...orderEvents,
  ...paymentEvents,
  ...productEvents,
  ...userEvents,
  ...supportEvents,
  ...adEvents,
] as const;

/** A discriminated union on `type` over the 22 known event types. */
export const procureIqEventSchema = z.discriminatedUnion('type', eventSchemas);

/** Any known ProcureIQ event. */
export type ProcureIqEvent = z.infer<typeof procureIqEventSchema>;
/** The name of a known event type, e.g. `'order.shipped'`. */
export type EventType = ProcureIqEvent['type'];
/** The event of one type: `EventOf<'order.shipped'>['data']['trackingNumber']` is a `string`. */
export type EventOf<T extends EventType> = Extract<ProcureIqEvent, { type: T }>;
/** An event as stored: known events are typed; unknown types keep the envelope shape. */
export type AnyEvent = ProcureIqEvent | z.infer<typeof envelopeSchema>;

const byType = new Map<string, (typeof eventSchemas)[number]>(
  eventSchemas.map((s) => [s.shape.type.value, s]),
);

/** The known event types, in catalogue order. */
export const eventTypes = eventSchemas.map((s) => s.shape.type.value) as EventType[];

export function isKnownEventType(type: string): type is EventType {
  return byType.has(type);
}

/**
 * Checks a parsed envelope against the schema of its type.
 * Returns `null` when it is valid or its type is unknown, otherwise a one-line reason.
 */
export function validateKnownEvent(event: { type: string }): string | null {
  const schema = byType.get(event.type);
  if (!schema) return null;
  const result = schema.safeParse(event);
  if (result.success) return null;
  return result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

/** The catalogue as JSON Schema (draft 2020-12), for consumers in other languages. */
export function catalogueJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'ProcureIQ webhook events',
    description: 'Envelope and the 22 event types delivered by ProcureIQ webhooks.',
    oneOf: eventSchemas.map((schema) => {
      const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<
        string,
        unknown
      >;
      return { title: schema.shape.type.value, ...rest };
    }),
  };
}
