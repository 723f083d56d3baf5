import { createHmac, timingSafeEqual } from 'node:crypto';

export type VerifyResult =
  | { ok: true; secretIndex: number }
  | { ok: false; reason: 'missing' | 'repeated' | 'malformed' | 'mismatch' | 'no_secret' };

const SIGNATURE_PATTERN = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * Verifies `x-procureiq-signature` against the exact raw bytes of the body, trying each secret in
 * turn (several secrets allow rotation without downtime). Never throws on malformed input.
 *
 * - The digest is compared with `timingSafeEqual` over 32 raw bytes, so the time taken does not
 *   reveal how many leading bytes matched.
 * - Empty secrets are skipped: an empty key would let anyone who guesses it forge deliveries.
 * - A header given twice is refused: a proxy that merges or reorders repeated headers must not
 *   decide which signature is checked.
 */
export function verifySignature(
  secrets: readonly string[],
  body: Uint8Array,
  header: string | readonly string[] | undefined | null,
): VerifyResult {
  if (header === undefined || header === null) return { ok: false, reason: 'missing' };
  let value: string;
  if (typeof header === 'string') {
    value = header;
  } else {
    if (header.length === 0) return { ok: false, reason: 'missing' };
    if (header.length > 1) return { ok: false, reason: 'repeated' };
    value = header[0] ?? '';
  }
  // Fetch-style Headers and some proxies join repeated headers with ", ".
  if (value.includes(',')) return { ok: false, reason: 'repeated' };
  const match = SIGNATURE_PATTERN.exec(value.trim());
  if (!match?.[1]) return { ok: false, reason: value.trim() === '' ? 'missing' : 'malformed' };
  const given = Buffer.from(match[1], 'hex');

  let tried = false;
  let matched = -1;
  for (let i = 0; i < secrets.length; i++) {
    const secret = secrets[i];
    if (!secret) continue;
    tried = true;
    const expected = createHmac('sha256', secret).update(body).digest();
    // Check every secret even after a match, so timing does not reveal which one matched.
    if (timingSafeEqual(expected, given) && matched === -1) matched = i;
  }
  if (!tried) return { ok: false, reason: 'no_secret' };
  return matched >= 0 ? { ok: true, secretIndex: matched } : { ok: false, reason: 'mismatch' };
}
