/**
 * The token of an `Authorization: Bearer <token>` header, or undefined. The scheme name is
 * case-insensitive (RFC 7235): a client sending `bearer` was refused, and each refusal counted
 * toward the sign-in limit.
 */
export function bearerToken(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^bearer +(.+)$/i.exec(header)?.[1];
}
