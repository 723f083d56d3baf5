import type { EventDetail, EventSummary } from '../store/inbox-store.ts';

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

/** Events as plain JSON objects (`attempts` is a number). */
export function summaryJson(e: EventSummary) {
  return {
    id: e.id,
    type: e.type,
    status: e.status,
    attempts: e.attempts,
    environment: e.environment,
    receivedAt: iso(e.receivedAt),
    deliveryId: e.deliveryId,
    nextAttemptAt: e.nextAttemptAt === null ? null : iso(e.nextAttemptAt),
    lastError: e.lastError,
  };
}

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

export function detailJson(e: EventDetail) {
  const text = Buffer.from(e.rawBody).toString('utf8');
  let payload: unknown = text;
  try {
    payload = JSON.parse(text);
  } catch {}
  return {
    ...summaryJson(e),
    created: e.created,
    maxAttempts: e.maxAttempts,
    timestampHeader: e.timestampHeader,
    bodySha256: e.bodySha256,
    validationError: e.validationError,
    processedAt: e.processedAt === null ? null : iso(e.processedAt),
    discardedAt: e.discardedAt === null ? null : iso(e.discardedAt),
    payload,
    attemptHistory: e.attemptHistory.map((a) => ({
      ...a,
      startedAt: iso(a.startedAt),
      finishedAt: a.finishedAt === null ? null : iso(a.finishedAt),
    })),
    deliveries: e.deliveries.map((d) => ({ ...d, receivedAt: iso(d.receivedAt) })),
  };
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
  out.push('', 'Payload:', JSON.stringify(d.payload, null, 2));
  return `${out.join('\n')}\n`;
}
