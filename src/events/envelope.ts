import { z } from 'zod';

/**
 * Identifiers are opaque strings. The guide's own example ids are not all valid ULIDs
 * (`evt_01HX900000000000000000001` is one character short), so ids are never pattern-checked.
 */
export const id = () => z.string().min(1);

/** `metadata` block of every envelope. */
export const metadataSchema = z.object({
  procureiqVersion: z.string().optional(),
  environment: z.string().optional(),
});

/**
 * The envelope shared by every ProcureIQ event. `data` is checked per type by the catalogue;
 * here it only has to be an object.
 *
 * Unknown fields never fail validation (zod objects accept and ignore them), so ProcureIQ can add
 * fields tomorrow. Handlers receive the payload as delivered, extra fields included; the inferred
 * types list only the documented fields, so a typo in a field name fails to compile.
 */
export const envelopeSchema = z.object({
  id: id(),
  type: z.string().min(1),
  version: z.string(),
  created: z.number(),
  data: z.record(z.string(), z.unknown()),
  metadata: metadataSchema.optional(),
});

export type Envelope = z.infer<typeof envelopeSchema>;

/** Builds the schema of one event type: the envelope with a literal `type` and a typed `data`. */
export function eventSchema<T extends string, D extends z.ZodRawShape>(type: T, data: D) {
  return envelopeSchema.extend({
    type: z.literal(type),
    data: z.object(data),
  });
}
