// Rows as both SQL engines return them (the same snake_case columns), and their mapping to the
// domain types. Row types mirror the SQL; the domain types are in inbox-store.ts.

import { withoutNul } from '../util/text.ts';
import {
  type AttemptRecord,
  type ClaimedEvent,
  type DeliveryRecord,
  type Environment,
  EVENT_STATUSES,
  type EventDetail,
  type EventStatus,
  type EventSummary,
  HANDLERS,
  type JobRecord,
  type JobStatus,
  type JobSummary,
  type NewEvent,
  type NewJob,
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
  last_error: string | null;
  processed_at: number | null;
  discarded_at: number | null;
}

/** A row of `jobs`. */
export interface JobRow {
  event_id: string;
  consumer: string;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  run_at: number | null;
  lease_owner: string | null;
  leased_at: number | null;
  last_error: string | null;
  finished_at: number | null;
}

/** A job as listed, with its event's type. */
export interface JobSummaryRow extends JobRow {
  type: string;
  updated_at: number;
}

export function toJobSummary(row: JobSummaryRow): JobSummary {
  return {
    eventId: row.event_id,
    type: row.type,
    consumer: row.consumer,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    nextAttemptAt: row.status === 'pending' || row.status === 'retrying' ? row.run_at : null,
    lastError: row.last_error,
    updatedAt: row.updated_at,
  };
}

/** The columns of an event that a claimed job carries. */
export interface ClaimedEventRow {
  id: string;
  type: string;
  environment: Environment;
  raw_body: Uint8Array;
  created: number;
  received_at: number;
  delivery_id: string | null;
}

/** A row of `attempts`. */
export interface AttemptRow {
  consumer: string;
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
 * The jobs a new event gets: its own list (an unhandled event may still be projected), or its
 * handlers job when it is pending. An invalid event gets none.
 */
export function jobsOf(event: NewEvent): readonly NewJob[] {
  if (event.status === 'invalid') return [];
  if (event.jobs) return event.jobs;
  return event.status === 'pending' ? [{ consumer: HANDLERS, maxAttempts: event.maxAttempts }] : [];
}

/** Counts for every status, zero where no row has it. */
export function countsByStatus(
  rows: readonly { status: EventStatus; n: number }[],
): Record<EventStatus, number> {
  const counts = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
  for (const row of rows) counts[row.status] = Number(row.n);
  return counts;
}

/** A leased job with its event's data. */
export function toClaimed(
  event: ClaimedEventRow,
  job: { consumer: string; attempts: number; max_attempts: number },
  owner: string,
): ClaimedEvent {
  return {
    id: event.id,
    consumer: job.consumer,
    type: event.type,
    environment: event.environment,
    rawBody: event.raw_body,
    created: event.created,
    receivedAt: event.received_at,
    deliveryId: event.delivery_id,
    attempt: job.attempts,
    maxAttempts: job.max_attempts,
    owner,
  };
}

/**
 * An event in full: its jobs; every finished attempt plus, for each leased job, the running one
 * (a running attempt lives on the job row until it finishes); its first delivery (on the event
 * row) and the duplicates.
 */
export function toDetail(
  row: InboxRow,
  jobRows: JobRow[],
  attempts: AttemptRow[],
  duplicates: DeliveryRow[],
): EventDetail {
  const history = attempts.map(
    (a): AttemptRecord => ({
      consumer: a.consumer,
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
  for (const job of jobRows) {
    if (job.status !== 'processing' || job.leased_at === null) continue;
    history.push({
      consumer: job.consumer,
      number: job.attempts,
      startedAt: job.leased_at,
      finishedAt: null,
      durationMs: null,
      outcome: 'running',
      errorMessage: null,
      errorStack: null,
      worker: job.lease_owner,
    });
  }
  const jobs = jobRows.map(
    (j): JobRecord => ({
      consumer: j.consumer,
      status: j.status,
      attempts: j.attempts,
      maxAttempts: j.max_attempts,
      nextAttemptAt: j.status === 'pending' || j.status === 'retrying' ? j.run_at : null,
      lastError: j.last_error,
      finishedAt: j.finished_at,
    }),
  );
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
    jobs,
    attemptHistory: history,
    deliveries: [delivery(row, false), ...duplicates.map((d) => delivery(d, true))],
  };
}

/**
 * An attempt's error text as both engines store it: U+0000 as U+FFFD (an error may quote what a
 * destination answered or a handler read; PostgreSQL's text cannot hold U+0000).
 */
export function errorText(text: string | undefined): string | null {
  return typeof text === 'string' ? withoutNul(text) : null;
}
