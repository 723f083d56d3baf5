import { z } from 'zod';

/**
 * Identifiers are opaque strings. The guide's own example ids are not all valid ULIDs
 * (`evt_01HX900000000000000000001` is one character short), so ids are never pattern-checked.
 */
export const id = () => z.string().min(1);

/**
 * Bounds of the envelope itself, checked before anything is stored (an envelope outside them is
 * refused with 400): `id` is the dedupe key kept forever and addressed by the admin API and CLI,
 * `created` goes into an integer column.
 */
export const ENVELOPE_BOUNDS = {
  /** Longest `id` and `type`, in UTF-8 bytes. */
  maxKeyBytes: 256,
  /** Latest `created`, unix seconds: 2100-01-01T00:00:00Z. The earliest is 0. */
  maxCreated: 4_102_444_800,
} as const;

/** A whitespace, control, format (bidi, zero-width), unassigned or lone surrogate code point. */
const NOT_PRINTABLE = /[\p{C}\p{Z}]/u;

/**
 * Why an envelope key (`id` or `type`) is out of bounds, or null: printable characters only, no
 * whitespace, at most `maxKeyBytes` bytes.
 */
export function envelopeKeyProblem(value: string): string | null {
  if (NOT_PRINTABLE.test(value))
    return 'must contain only printable characters (no whitespace or control characters)';
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > ENVELOPE_BOUNDS.maxKeyBytes)
    return `must be at most ${ENVELOPE_BOUNDS.maxKeyBytes} bytes (UTF-8), not ${bytes}`;
  return null;
}

/** Whether `created` is an integer number of unix seconds from 1970 up to 2100. */
export function isCreatedInBounds(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= ENVELOPE_BOUNDS.maxCreated;
}

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
  id: id().refine((v) => envelopeKeyProblem(v) === null, { message: 'id is out of bounds' }),
  type: z.string().min(1),
  version: z.string(),
  created: z.number().int().min(0).max(ENVELOPE_BOUNDS.maxCreated),
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
