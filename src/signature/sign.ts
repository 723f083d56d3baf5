import { createHmac } from 'node:crypto';

/** The header ProcureIQ signs each delivery with. */
export const SIGNATURE_HEADER = 'x-procureiq-signature';
const PREFIX = 'sha256=';

/**
 * Signs a body the way ProcureIQ does: `sha256=<hex HMAC-SHA256 of the raw body>`.
 * @example sign('my-secret', rawBody) // 'sha256=4864d2…'
 */
export function sign(secret: string, body: string | Uint8Array): string {
  if (secret.length === 0) throw new TypeError('sign: the secret must not be empty');
  return PREFIX + createHmac('sha256', secret).update(body).digest('hex');
}
