import type { EventDetail, EventSummary } from '../store/inbox-store.ts';

// Events as JSON for people and scripts (the admin API, `events list --json`, `events show --json`):
// ISO times, the payload parsed, `attempts` a number and `attemptHistory` the list.

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function summaryJson(e: EventSummary) {
  return {
    id: e.id,
    type: e.type,
    status: e.status,
    environment: e.environment,
    attempts: e.attempts,
    receivedAt: new Date(e.receivedAt).toISOString(),
    deliveryId: e.deliveryId,
    nextAttemptAt: e.nextAttemptAt === null ? null : new Date(e.nextAttemptAt).toISOString(),
    lastError: e.lastError,
  };
}

export function detailJson(e: EventDetail) {
  const raw = Buffer.from(e.rawBody).toString('utf8');
  let payload: unknown = null;
  try {
    payload = raw === '' ? null : JSON.parse(raw);
  } catch {}
  return {
    ...summaryJson(e),
    created: e.created,
    maxAttempts: e.maxAttempts,
    bodySha256: e.bodySha256,
    validationError: e.validationError,
    processedAt: iso(e.processedAt),
    discardedAt: iso(e.discardedAt),
    purged: raw === '',
    headers: {
      'x-procureiq-delivery': e.deliveryId,
      'x-procureiq-timestamp': e.timestampHeader,
      'x-procureiq-event': e.type,
    },
    payload,
    rawBody: raw,
    deliveries: e.deliveries.map((d) => ({ ...d, receivedAt: iso(d.receivedAt) })),
    attemptHistory: e.attemptHistory.map((a) => ({
      ...a,
      startedAt: iso(a.startedAt),
      finishedAt: iso(a.finishedAt),
    })),
  };
}
