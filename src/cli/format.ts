import { type DetailJson, detailJson } from '../ops/event-json.ts';
import type { EventDetail, EventSummary } from '../store/inbox-store.ts';

const iso = (ms: number) => new Date(ms).toISOString();

export function printTable(events: EventSummary[]): string {
  if (events.length === 0) return 'no events\n';
  const rows = events.map((e) => [
    iso(e.receivedAt),
    e.id,
    e.type,
    e.status,
    String(e.attempts),
    e.lastError ?? '',
  ]);
  const header = ['RECEIVED', 'ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'LAST ERROR'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c.slice(0, 80) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function printDetail(e: EventDetail): string {
  const d = detailJson(e);
  const out: string[] = [
    `${d.id}  ${d.type}`,
    `  status:      ${d.status}${d.status === 'dead' && d.discardedAt ? ' (discarded)' : ''}`,
    `  attempts:    ${d.attempts} of ${d.maxAttempts}`,
    `  environment: ${d.environment}`,
    `  received:    ${d.receivedAt}`,
  ];
  if (d.nextAttemptAt) out.push(`  next try:    ${d.nextAttemptAt}`);
  if (d.validationError) out.push(`  invalid:     ${d.validationError}`);
  out.push('', 'Deliveries:');
  for (const del of d.deliveries) {
    out.push(
      `  ${del.receivedAt}  ${del.deliveryId ?? '(no delivery id)'}${del.duplicate ? '  duplicate' : ''}  secret #${del.secretIndex}`,
    );
  }
  out.push('', 'Attempts:');
  if (d.attemptHistory.length === 0) out.push('  none yet');
  for (const a of d.attemptHistory) {
    out.push(
      `  #${a.number}  ${a.startedAt}  ${a.outcome}${a.durationMs === null ? '' : `  ${a.durationMs}ms`}`,
    );
    if (a.errorMessage) out.push(`      ${a.errorMessage}`);
    if (a.errorStack)
      out.push(
        ...a.errorStack
          .split('\n')
          .slice(1, 4)
          .map((l) => `      ${l.trim()}`),
      );
  }
  out.push('', 'Payload:', ...payloadLines(d));
  return `${out.join('\n')}\n`;
}

/** The parsed payload, indented; or, when it cannot be rendered, why and the raw body as stored. */
function payloadLines(d: DetailJson): string[] {
  if (d.purged) return ['  (purged by retention)'];
  if ('payload' in d) return [JSON.stringify(d.payload, null, 2)];
  return [`  (${d.payloadError ?? 'the payload cannot be rendered'})`, '', 'Raw body:', d.rawBody];
}
