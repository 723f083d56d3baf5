// Rows as both SQL engines return them (the same snake_case columns), and their mapping to the
// domain types. Row types mirror the SQL; the domain types are in inbox-store.ts.
import type {
  AttemptRecord,
  DeliveryRecord,
  Environment,
  EventDetail,
  EventStatus,
  EventSummary,
} from './inbox-store.ts';

/** The error recorded for an attempt whose lease expired: its worker stopped or crashed. */
export const INTERRUPTED = 'interrupted: the worker stopped or crashed during this attempt (lease expired)';

/** The columns a summary needs. */
export const SUMMARY_COLUMNS =
  'id, type, environment, status, attempts, received_at, created, delivery_id, run_at, last_error';

/** A row of `events`. */
export interface InboxRow {
  id: string;
  type: string;
  environment: Environment;
  status: EventStatus;
  created: number;
  raw_body: Uint8Array | null;
  body_sha256: string;
  delivery_id: string | null;
  timestamp_header: string | null;
  received_at: number;
  secret_index: number;
  source_address: string | null;
  validation_error: string | null;
  attempts: number;
  max_attempts: number;
  run_at: number | null;
  lease_owner: string | null;
  leased_at: number | null;
  last_error: string | null;
  processed_at: number | null;
  discarded_at: number | null;
}

/** A row of `attempts`. */
export interface AttemptRow {
  number: number;
  worker: string | null;
  started_at: number;
  finished_at: number | null;
  duration_ms: number | null;
  outcome: AttemptRecord['outcome'];
  error_message: string | null;
  error_stack: string | null;
}

/** A row of `duplicate_deliveries`. */
export interface DeliveryRow {
  delivery_id: string | null;
  received_at: number;
  timestamp_header: string | null;
  secret_index: number;
  source_address: string | null;
}

export function toSummary(row: Omit<InboxRow, 'raw_body'>): EventSummary {
  return {
    id: row.id,
    type: row.type,
    environment: row.environment,
    status: row.status,
    attempts: row.attempts,
    receivedAt: row.received_at,
    created: row.created,
    deliveryId: row.delivery_id,
    nextAttemptAt: row.status === 'pending' || row.status === 'retrying' ? row.run_at : null,
    lastError: row.last_error,
  };
}

/**
 * An event in full: its finished attempts plus, while it is leased, the running one (a running
 * attempt lives on the event row until it finishes); its first delivery (on the event row) and
 * the duplicates.
 */
export function toDetail(row: InboxRow, attempts: AttemptRow[], duplicates: DeliveryRow[]): EventDetail {
  const history = attempts.map(
    (a): AttemptRecord => ({
      number: a.number,
      startedAt: a.started_at,
      finishedAt: a.finished_at,
      durationMs: a.duration_ms,
      outcome: a.outcome,
      errorMessage: a.error_message,
      errorStack: a.error_stack,
      worker: a.worker,
    }),
  );
  if (row.status === 'processing' && row.leased_at !== null) {
    history.push({
      number: row.attempts,
      startedAt: row.leased_at,
      finishedAt: null,
      durationMs: null,
      outcome: 'running',
      errorMessage: null,
      errorStack: null,
      worker: row.lease_owner,
    });
  }
  const delivery = (d: DeliveryRow, duplicate: boolean): DeliveryRecord => ({
    deliveryId: d.delivery_id,
    receivedAt: d.received_at,
    duplicate,
    timestampHeader: d.timestamp_header,
    secretIndex: d.secret_index,
    sourceAddress: d.source_address,
  });
  return {
    ...toSummary(row),
    rawBody: row.raw_body ?? new Uint8Array(),
    bodySha256: row.body_sha256,
    timestampHeader: row.timestamp_header,
    validationError: row.validation_error,
    maxAttempts: row.max_attempts,
    processedAt: row.processed_at,
    discardedAt: row.discarded_at,
    attemptHistory: history,
    deliveries: [delivery(row, false), ...duplicates.map((d) => delivery(d, true))],
  };
}
