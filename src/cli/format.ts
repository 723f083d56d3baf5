import { type DeliveryJson, type DetailJson, detailJson } from '../ops/event-json.ts';
import type { EventDetail, EventSummary } from '../store/inbox-store.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/** Columns padded to their widest cell; the last column is cut at 80 characters. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c.slice(0, 80) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/**
 * Events as a table. With `deadConsumers` (the dead-letter list), a column names the consumers
 * whose job is dead (`handlers`, `route:NAME`).
 */
export function printTable(events: EventSummary[], deadConsumers?: ReadonlyMap<string, string[]>): string {
  if (events.length === 0) return 'no events\n';
  const header = [
    'RECEIVED',
    'ID',
    'TYPE',
    'STATUS',
    'ATTEMPTS',
    ...(deadConsumers ? ['DEAD'] : []),
    'LAST ERROR',
  ];
  const rows = events.map((e) => [
    iso(e.receivedAt),
    e.id,
    e.type,
    e.status,
    String(e.attempts),
    ...(deadConsumers ? [(deadConsumers.get(e.id) ?? []).join(',')] : []),
    e.lastError ?? '',
  ]);
  return table(header, rows);
}

/** Route jobs (`deliveries list`), most recently changed first. */
export function printJobs(jobs: readonly DeliveryJson[]): string {
  if (jobs.length === 0) return 'no deliveries\n';
  return table(
    ['UPDATED', 'EVENT', 'TYPE', 'ROUTE', 'STATUS', 'ATTEMPTS', 'LAST ERROR'],
    jobs.map((j) => [
      j.updatedAt,
      j.eventId,
      j.type,
      j.route,
      j.status,
      `${j.attempts}/${j.maxAttempts}`,
      j.lastError ?? '',
    ]),
  );
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
  if (d.jobs.length > 0) {
    out.push('', 'Jobs:');
    for (const j of d.jobs)
      out.push(
        `  ${j.consumer}  ${j.status}  ${j.attempts} of ${j.maxAttempts} attempt(s)${j.nextAttemptAt ? `  next ${j.nextAttemptAt}` : ''}${j.lastError ? `  ${j.lastError}` : ''}`,
      );
  }
  out.push('', 'Attempts:');
  if (d.attemptHistory.length === 0) out.push('  none yet');
  for (const a of d.attemptHistory) {
    out.push(
      `  ${a.consumer}  #${a.number}  ${a.startedAt}  ${a.outcome}${a.durationMs === null ? '' : `  ${a.durationMs}ms`}`,
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
