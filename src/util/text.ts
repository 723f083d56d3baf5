const NUL = '\u0000';

/**
 * `text` with each U+0000 as U+FFFD. PostgreSQL's text cannot hold U+0000 (a write of one fails
 * with 22021, every time), so text from outside (event data, an error a destination or a handler
 * wrote) is stored this way on both engines, and they agree.
 */
export function withoutNul(text: string): string {
  return text.includes(NUL) ? text.replaceAll(NUL, '\uFFFD') : text;
}
