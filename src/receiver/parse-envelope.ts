import { isUtf8 } from 'node:buffer';
import sjson from 'secure-json-parse';
import { ENVELOPE_BOUNDS, envelopeKeyProblem, isCreatedInBounds } from '../events/envelope.ts';
import { PayloadError } from '../util/errors.ts';

/** The envelope fields the receiver needs before it can store anything. */
export interface ParsedEnvelope {
  id: string;
  type: string;
  created: number;
  data: Record<string, unknown>;
  metadata?: { environment?: unknown };
  [key: string]: unknown;
}

/**
 * Parses a delivery body safely and checks the envelope's shape.
 * - `__proto__` and `constructor.prototype` keys are dropped, so nothing downstream can be
 *   polluted by merging the event into another object.
 * - A key repeated at the top level is refused: `JSON.parse` silently keeps the last `id`, so
 *   two parsers could disagree about which event this is.
 */
export function parseEnvelope(body: Uint8Array): ParsedEnvelope {
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (!isUtf8(buffer)) throw new PayloadError('body is not valid UTF-8 JSON');
  const text = buffer.toString('utf8');
  let value: unknown;
  try {
    value = sjson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' });
  } catch (error) {
    throw new PayloadError(
      `body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PayloadError('body must be a JSON object (the ProcureIQ event envelope)');
  }
  const duplicate = findDuplicateTopLevelKey(text);
  if (duplicate !== null) throw new PayloadError(`envelope has the key "${duplicate}" more than once`);

  const envelope = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of ['id', 'type'] as const) {
    const value = envelope[key];
    if (typeof value !== 'string' || value === '') problems.push(`"${key}" must be a non-empty string`);
    else {
      const problem = envelopeKeyProblem(value);
      if (problem !== null) problems.push(`"${key}" ${problem}`);
    }
  }
  if (typeof envelope.created !== 'number') problems.push('"created" must be a number (unix seconds)');
  else if (!isCreatedInBounds(envelope.created))
    problems.push(
      `"created" must be an integer number of unix seconds from 0 to ${ENVELOPE_BOUNDS.maxCreated} (2100-01-01)`,
    );
  if (typeof envelope.data !== 'object' || envelope.data === null || Array.isArray(envelope.data))
    problems.push('"data" must be an object');
  if (problems.length > 0) throw new PayloadError(`invalid envelope: ${problems.join('; ')}`);
  return envelope as ParsedEnvelope;
}

/**
 * Returns the first key that appears twice in the top-level object of valid JSON text, or null.
 * Keys are compared after unescaping, so `"\u0069d"` counts as `"id"`.
 */
export function findDuplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      if (depth === 1 && expectKey) {
        const raw = text.slice(start, i + 1);
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b /* { */) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x5b /* [ */) {
      depth++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}
