/**
 * Control characters written visibly (`\n`, `\u001b`), so untrusted text put in a human-readable
 * line cannot start a forged line of its own or drive a terminal. Line and paragraph separators
 * and bidirectional overrides count too.
 */
export function escapeControl(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/**
 * Text for a Slack-compatible `text` field: control characters escaped, and `&`, `<`, `>` written
 * as Slack requires, so `<!channel>` or `<https://…|label>` in untrusted text stay plain text.
 */
export function escapeChatText(text: string): string {
  return escapeControl(text).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
