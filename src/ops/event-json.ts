import { routeNameOf } from '../routes/route-jobs.ts';
import type { EventDetail, EventSummary, JobRecord, JobSummary } from '../store/inbox-store.ts';

// Events as JSON for people and scripts (the admin API, `events list --json`, `events show --json`):
// ISO times, the payload parsed, `attempts` a number and `attemptHistory` the list.

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Deepest payload the detail renders as parsed JSON. Ingest accepts any nesting (JSON.parse is
 * iterative), but JSON.stringify recurses and overflows the stack a few thousand levels down,
 * inside this process and in a browser alike; deeper payloads are shown as their raw body.
 */
export const MAX_RENDERED_DEPTH = 256;

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

/**
 * One event in full. `rawBody` is always there (as text); `payload` only when it can be rendered,
 * otherwise `payloadError` says why (and `payload` is absent).
 */
export function detailJson(e: EventDetail) {
  const raw = Buffer.from(e.rawBody).toString('utf8');
  const parsed = renderablePayload(raw);
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
    ...('payload' in parsed ? { payload: parsed.payload } : {}),
    payloadError: 'error' in parsed ? parsed.error : null,
    rawBody: raw,
    deliveries: e.deliveries.map((d) => ({ ...d, receivedAt: iso(d.receivedAt) })),
    jobs: e.jobs.map(jobJson),
    attemptHistory: e.attemptHistory.map((a) => ({
      ...a,
      startedAt: iso(a.startedAt),
      finishedAt: iso(a.finishedAt),
    })),
  };
}

export type DetailJson = ReturnType<typeof detailJson>;

/** One job of an event: its consumer (`handlers`, `route:NAME`) and where it stands. */
export function jobJson(j: JobRecord) {
  return {
    consumer: j.consumer,
    status: j.status,
    attempts: j.attempts,
    maxAttempts: j.maxAttempts,
    nextAttemptAt: iso(j.nextAttemptAt),
    lastError: j.lastError,
    finishedAt: iso(j.finishedAt),
  };
}

/** One route job as `deliveries list` shows it. */
export function deliveryJson(j: JobSummary) {
  return {
    eventId: j.eventId,
    type: j.type,
    route: routeNameOf(j.consumer) ?? j.consumer,
    status: j.status,
    attempts: j.attempts,
    maxAttempts: j.maxAttempts,
    nextAttemptAt: iso(j.nextAttemptAt),
    lastError: j.lastError,
    updatedAt: new Date(j.updatedAt).toISOString(),
  };
}

export type DeliveryJson = ReturnType<typeof deliveryJson>;

/** The parsed payload, or why it is not rendered. A purged (empty) body is a `null` payload. */
export function renderablePayload(raw: string): { payload: unknown } | { error: string } {
  if (raw === '') return { payload: null };
  const depth = nestingDepth(raw);
  if (depth > MAX_RENDERED_DEPTH) {
    return {
      error: `the payload nests ${depth} levels deep; more than ${MAX_RENDERED_DEPTH} cannot be rendered, so only the raw body is shown`,
    };
  }
  try {
    return { payload: JSON.parse(raw) };
  } catch {
    return { error: 'the stored body is not valid JSON; only the raw body is shown' };
  }
}

/** How deep `[` and `{` nest in JSON text, skipping strings; a loop, so any depth is safe. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
