/**
 * The durable inbox: the one seam between procureiq-webhooks and its database. Methods speak
 * the domain and carry no driver or transaction types, so each engine (SQLite, PostgreSQL)
 * implements it in full and one conformance suite checks every implementation.
 *
 * Glossary
 * - **event**: one ProcureIQ event id, stored once with the exact bytes of its first delivery.
 *   Its id is the dedupe key, kept forever. Repeated deliveries are recorded beside it.
 * - **consumer**: something that must act on an event: its handlers (`handlers`) or one route
 *   (`route:NAME`).
 * - **job**: one (event, consumer) pair, with its own status, attempts, lease, retry schedule and
 *   dead letter. A failing consumer never delays or repeats another. The event's status sums up
 *   its jobs (see `EventStatus`).
 * - **unhandled** vs **invalid**: an unhandled event is well-formed but no consumer wants it; an
 *   invalid one is a known type whose data failed its schema. Neither gets a job at receipt.
 * - **claim**: a worker takes due jobs. Each claim starts an **attempt**, numbered from 1.
 * - **lease**: a claimed job belongs to one worker (its **owner**) until the lease expires; a job
 *   whose lease expired is recovered by the next claim (its attempt counts as `interrupted`).
 * - **fencing token**: the attempt number. Every finishing write checks that the job is still
 *   processing that attempt, so a worker whose lease was taken over changes nothing.
 * - **reserve / accept**: how the receiver hands a new event to a local worker without a claim
 *   round trip: the worker reserves room, the store leases the job in the same write that stores
 *   the event, and the worker accepts the leased job.
 */

/**
 * Every state an event can be in. The database enforces this list with a CHECK constraint. With
 * jobs: `dead` if any job is dead; else `unhandled` when no handler or route wants it (only the
 * projections job, if any); else `processing`, `retrying` or `pending` while any job is;
 * `processed` once every job is processed (or skipped).
 */
export const EVENT_STATUSES = [
  'pending',
  'processing',
  'retrying',
  'processed',
  'unhandled',
  'invalid',
  'dead',
] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/** Every state a job can be in: an event's states, less `invalid`, plus `skipped` (a route's transform declined it). */
export const JOB_STATUSES = [
  'pending',
  'processing',
  'retrying',
  'processed',
  'skipped',
  'unhandled',
  'dead',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** The consumer that runs an event's handlers. Routes are `route:NAME`. */
export const HANDLERS = 'handlers';

/**
 * The consumer that keeps the live tables (procureiq_orders, …). It does not make an event
 * wanted: an event only it takes stays `unhandled`, unless its projection write dies.
 */
export const PROJECTIONS = 'projections';

/**
 * Who should look for work when another process made jobs due: the worker (handlers), the route
 * dispatcher, or the projections runner. A wake names the kinds its new jobs belong to.
 */
export type JobKind = 'handlers' | 'routes' | 'projections';

/** States an operator may replay an event from. */
export const REPLAYABLE_STATUSES: readonly EventStatus[] = ['processed', 'dead', 'invalid', 'unhandled'];

export type Environment = 'production' | 'sandbox';

/** A verified delivery, ready to be stored. */
export interface NewEvent {
  id: string;
  type: string;
  environment: Environment;
  /** `pending` for events a handler will take; `unhandled` or `invalid` are decided at insert. */
  status: 'pending' | 'unhandled' | 'invalid';
  /** The envelope's `created` (unix seconds). */
  created: number;
  /** The exact bytes that were signed. The store keeps their SHA-256 with the dedupe key. */
  rawBody: Uint8Array;
  deliveryId: string | null;
  timestampHeader: string | null;
  /** Epoch milliseconds. */
  receivedAt: number;
  /** Why a known type failed its schema (status `invalid`). */
  validationError: string | null;
  /** 1 + the number of retries this event's type is allowed (its handlers job's budget). */
  maxAttempts: number;
  /**
   * The jobs to create with a `pending` event. Omitted: one handlers job with `maxAttempts`.
   * Routes add one job each (`route:NAME`), decided here so they exist atomically with the event.
   */
  jobs?: readonly NewJob[] | undefined;
  /**
   * The event's projection writes, for a store that applies them in the insert's own transaction
   * (`projectsAtInsert`): then the `projections` job in `jobs` is not created. If a write fails it
   * rolls back alone and the job is created instead, so the failure is retried and dead-lettered
   * like any other. A store that does not project at insert ignores this and creates the job.
   */
  projection?: readonly TransactionalStatement[] | undefined;
  /** Index of the secret that verified the delivery. */
  secretIndex: number;
  sourceAddress: string | null;
  /**
   * A rehearsal (the warm-up's deliveries), sent only to a store that `rehearses`: it keeps
   * nothing. SQLite runs the insert's whole way on the writer and rolls it back; PostgreSQL
   * answers without a write. The answer is `inserted`, with no lease.
   */
  rehearsal?: boolean;
}

/** A job to create with its event. */
export interface NewJob {
  consumer: string;
  maxAttempts: number;
  /** Jobs of one consumer with the same key run one at a time, in order of created, then receipt. */
  orderKey?: string | null | undefined;
}

export type InsertOutcome = 'inserted' | 'duplicate';

/** What `insertIfAbsent` did, and the event's lease when it was claimed as it was stored. */
export interface InsertResult {
  outcome: InsertOutcome;
  claimed: ClaimedEvent | null;
  /**
   * True when the event was projected in the insert's own transaction (`NewEvent.projection`),
   * so its projections job was not created. Absent: any projections job exists, for the runner.
   */
  projectedAtInsert?: boolean;
}

/** Asks `insertIfAbsent` to lease a new pending event to a local worker in the same write. */
export interface LeaseRequest {
  owner: string;
  leaseMs: number;
}

/** A job leased to one worker for one attempt, with its event. */
export interface ClaimedEvent {
  /** The event's id. */
  id: string;
  consumer: string;
  type: string;
  environment: Environment;
  rawBody: Uint8Array;
  /** The envelope's `created` (unix seconds), as stored. */
  created: number;
  receivedAt: number;
  deliveryId: string | null;
  /** The number of this attempt, 1-based. Also the lease's fencing token. */
  attempt: number;
  maxAttempts: number;
  /** The worker holding the lease. */
  owner: string;
}

/** A lease: the job (event id and consumer), the fencing token (its attempt number) that must still hold, and its holder. */
export interface Lease {
  id: string;
  consumer: string;
  attempt: number;
  owner: string;
}

export type AttemptOutcome =
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'interrupted'
  | 'aborted'
  | 'skipped';

export interface AttemptResult {
  startedAt: number;
  finishedAt: number;
  outcome: Exclude<AttemptOutcome, 'running' | 'interrupted'>;
  errorMessage?: string | undefined;
  errorStack?: string | undefined;
}

/**
 * A SQL statement to run in the same transaction that marks an event processed. This is how a
 * handler gets exactly-once effects for work in the same database: if the lease was lost, or the
 * commit fails, neither the statement nor the processed mark is applied.
 */
export interface TransactionalStatement {
  sql: string;
  params: readonly unknown[];
  /**
   * A name that always stands for this same `sql` (the projections' upserts, several KB each): a
   * store may then pass the text to its database connection once and the name after that.
   */
  name?: string;
}

export interface AttemptRecord {
  consumer: string;
  number: number;
  startedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
  outcome: AttemptOutcome;
  errorMessage: string | null;
  errorStack: string | null;
  worker: string | null;
}

export interface DeliveryRecord {
  deliveryId: string | null;
  receivedAt: number;
  duplicate: boolean;
  timestampHeader: string | null;
  secretIndex: number;
  sourceAddress: string | null;
}

/** One event as listed. */
export interface EventSummary {
  id: string;
  type: string;
  environment: Environment;
  status: EventStatus;
  attempts: number;
  receivedAt: number;
  created: number;
  deliveryId: string | null;
  nextAttemptAt: number | null;
  lastError: string | null;
}

/** One job of an event, as shown. */
export interface JobRecord {
  consumer: string;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  finishedAt: number | null;
}

/** One event in full. */
export interface EventDetail extends EventSummary {
  rawBody: Uint8Array;
  bodySha256: string;
  timestampHeader: string | null;
  validationError: string | null;
  maxAttempts: number;
  processedAt: number | null;
  discardedAt: number | null;
  jobs: JobRecord[];
  /** Every attempt of every job, in the order they started. */
  attemptHistory: AttemptRecord[];
  deliveries: DeliveryRecord[];
}

/** Filters for listing events, newest (most recently stored) first. */
export interface ListFilter {
  status?: EventStatus | undefined;
  type?: string | undefined;
  environment?: Environment | undefined;
  /** Received at or after (epoch ms). */
  since?: number | undefined;
  /** Received before (epoch ms). */
  until?: number | undefined;
  /** Text that appears in the raw payload, e.g. an order id. */
  text?: string | undefined;
  /** Excludes discarded dead letters when true. */
  excludeDiscarded?: boolean | undefined;
  limit?: number | undefined;
  /** Keyset cursor: list events stored before the event with this id. */
  before?: string | undefined;
}

export interface ClaimOptions {
  /** Identifies the worker, recorded on the lease and the attempt. */
  owner: string;
  /** Which consumers' jobs to claim. @defaultValue `[HANDLERS]` */
  consumers?: readonly string[] | undefined;
  limit: number;
  leaseMs: number;
  /**
   * Jobs, by event type, that an event gets in the same write when the claim finds its handlers
   * job's lease expired on its last attempt and dead-letters it (as `deadLetter`'s `then`).
   */
  deadLetterJobs?: Readonly<Record<string, readonly NewJob[]>> | undefined;
}

/** What one claim returned: leased jobs, and jobs whose expired lease used up their attempts. */
export interface ClaimBatch {
  events: ClaimedEvent[];
  deadLettered: { id: string; consumer: string; type: string; attempts: number }[];
}

/**
 * What `replay` did. `purged`: retention dropped the event's payload, so there is nothing to run
 * (replayed anyway, every attempt failed on the missing body, then the event went dead, alerted).
 */
export type ReplayOutcome = 'replayed' | 'not_found' | 'not_replayable' | 'purged';

/** What the dashboard and the metrics show about the inbox. */
export interface InboxStats {
  byStatus: Record<EventStatus, number>;
  /** Counts by type and status, for events received in the window. */
  byType: { type: string; status: EventStatus; count: number }[];
  /** When the oldest event still waiting (pending or retrying) was received. */
  oldestWaitingAt: number | null;
  /** Events received per minute and type in the window (minute = epoch ms of its start). */
  receivedPerMinute: { minute: number; type: string; count: number }[];
  /** Failed, timed-out or interrupted attempts per minute in the window. */
  failedAttemptsPerMinute: { minute: number; count: number }[];
}

/** Filters for listing jobs (`deliveries list`), most recently changed first. */
export interface JobFilter {
  /** One consumer (`handlers`, `route:NAME`), or every consumer whose name starts with `prefix`. */
  consumer?: string | undefined;
  consumerPrefix?: string | undefined;
  status?: JobStatus | undefined;
  limit?: number | undefined;
}

/** One job as listed. */
export interface JobSummary {
  eventId: string;
  type: string;
  consumer: string;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  updatedAt: number;
}

export interface SecretUse {
  environment: Environment;
  secretIndex: number;
  /** Epoch ms. */
  lastVerifiedAt: number;
}

export interface AuditEntry {
  at: number;
  /** Who: the admin credential's fingerprint and the caller's address. */
  actor: string;
  action: string;
  details: Record<string, unknown>;
}

export interface InboxStore {
  /**
   * True when one process at a time serves this store (embedded SQLite): at start-up every lease
   * belongs to a process that is gone and may be recovered at once.
   */
  readonly exclusive: boolean;

  /** The SQL dialect of `TransactionalStatement`s this store runs (`?` or `$1` parameters). */
  readonly dialect: 'sqlite' | 'postgres';

  /**
   * Whether `insertIfAbsent` applies `NewEvent.projection` in the insert's transaction (SQLite:
   * one writer, so it costs one upsert in a commit that happens anyway) rather than leaving it to
   * the event's projections job.
   */
  readonly projectsAtInsert: boolean;

  /**
   * True when `insertIfAbsent` honours `NewEvent.rehearsal` (keeps nothing of it). The warm-up
   * sends its deliveries to a store only then; a store of your own without it is left out of the
   * warm-up, so it is never handed an event that is not real.
   */
  readonly rehearses?: boolean;

  /** Applies pending migrations. Safe to call from several processes at once. */
  migrate(): Promise<void>;

  /**
   * Stores a verified event keyed by its id, durably (the write is on disk when this resolves),
   * with its jobs: a `pending` event gets its handlers job. A second delivery of the same id
   * stores nothing new but its delivery record.
   *
   * With `lease`, the new handlers job is leased to that worker in the same write (its first
   * attempt starts at once), saving a claim round trip; the worker must have room for it.
   */
  insertIfAbsent(event: NewEvent, lease?: LeaseRequest): Promise<InsertResult>;

  /**
   * Leases up to `limit` due jobs of `consumers` (pending, or retrying whose time has come) to
   * `owner`, in due order. Each claim starts a new attempt whose number is the lease's fencing
   * token. Leases of those consumers that expired first count their attempt as `interrupted` and
   * are retried now, or dead-lettered if their attempts are used up.
   */
  claimDue(options: ClaimOptions): Promise<ClaimBatch>;

  /**
   * Marks a leased job processed and runs `statements` in the same transaction. Returns false,
   * changing nothing, when the lease no longer holds (expired and taken over, or replayed).
   */
  complete(
    lease: Lease,
    result: AttemptResult,
    statements?: readonly TransactionalStatement[],
  ): Promise<boolean>;

  /**
   * Records that the consumer does not take this event (no handler for its type): `unhandled`.
   * `then`: jobs the event gets in the same transaction, if the lease held and it has none of that
   * consumer yet (pending, due now). A handled event's projections job goes this way, so its
   * entity row follows it even though no handler completed it.
   */
  markUnhandled(lease: Lease, result: AttemptResult, then?: readonly NewJob[]): Promise<boolean>;

  /** Records that the consumer declined the event on purpose (a transform returned null): `skipped`. */
  markSkipped(lease: Lease, result: AttemptResult): Promise<boolean>;

  /** Records a failed attempt and schedules the next one at `runAt` (epoch ms). False if fenced out. */
  scheduleRetry(lease: Lease, result: AttemptResult, runAt: number): Promise<boolean>;

  /**
   * Records the last failed attempt and marks the job `dead`. False if fenced out. `then` as for
   * markUnhandled: a dead handler does not keep its event out of the projected tables.
   */
  deadLetter(lease: Lease, result: AttemptResult, then?: readonly NewJob[]): Promise<boolean>;

  /**
   * Gives a lease back without spending an attempt (shutdown, or a destination paused by its
   * breaker): the attempt is recorded as `aborted` and the job is due again at `runAt` (epoch ms),
   * at once when omitted.
   */
  release(lease: Lease, result: AttemptResult, runAt?: number): Promise<boolean>;

  /**
   * Expires every lease held by owners matching `ownerPrefix` (all when omitted), so the next
   * claim recovers them. Used at start-up by the embedded store, whose leases can only belong to
   * a process that is gone.
   */
  expireLeases(ownerPrefix?: string): Promise<number>;

  /**
   * Makes a processed, dead, invalid or unhandled event due again with a fresh budget of
   * `maxAttempts` attempts per job: only `consumer`'s job when given; else a dead event's dead jobs
   * (so no destination that succeeded gets it again); else every finished job. An event that never
   * had a job gets its handlers job. Adds attempts; never a new event.
   */
  replay(id: string, maxAttempts: number, consumer?: string): Promise<ReplayOutcome>;

  /** Marks dead letters as discarded: kept for dedupe and audit, hidden from the dead-letter list. */
  discard(ids: readonly string[]): Promise<number>;

  get(id: string): Promise<EventDetail | null>;
  list(filter: ListFilter): Promise<EventSummary[]>;
  /** Counts by status. */
  countByStatus(): Promise<Record<EventStatus, number>>;
  /**
   * Jobs by consumer and status (routes list, queue depth). `unfinished` counts only pending,
   * retrying and processing jobs, from their indexes: cheap at every scrape however large the
   * history.
   */
  countJobs(options?: {
    unfinished?: boolean;
  }): Promise<{ consumer: string; status: JobStatus; count: number }[]>;
  listJobs(filter: JobFilter): Promise<JobSummary[]>;
  /**
   * When the oldest event still waiting for its first or next attempt (pending or retrying) was
   * received (epoch ms), or null when none waits: `stats().oldestWaitingAt` alone, without its
   * counts, for the metric a scraper reads every few seconds.
   */
  oldestWaitingAt(environment?: Environment): Promise<number | null>;
  /** Counts, throughput and failures for events received since `since` (epoch ms). */
  stats(options: { since: number; environment?: Environment | undefined }): Promise<InboxStats>;
  /** Records when secrets verified deliveries (keeps the latest time per secret). */
  recordSecretUse(uses: readonly SecretUse[]): Promise<void>;
  secretUsage(): Promise<SecretUse[]>;
  /** Appends to the audit log. */
  audit(entry: AuditEntry): Promise<void>;
  /** The newest audit entries first. */
  auditLog(limit: number): Promise<AuditEntry[]>;
  /**
   * Retention: drops the payload and attempt history of up to `limit` processed events processed
   * before `olderThan`. The event row (id, type, body hash) stays as the dedupe key. Returns how
   * many were purged; call again until it returns 0.
   */
  purgeProcessed(olderThan: number, limit: number): Promise<number>;
  /**
   * When the worker should next look (epoch ms): the earliest time a pending or retrying job falls
   * due or a lease expires; null if no job waits or runs.
   */
  nextDueAt(): Promise<number | null>;
  /** Checks that the store answers and its migrations are current; rejects with the reason. */
  ping(): Promise<void>;
  /**
   * Calls `onDue` when events may have become due through another process (another instance
   * stored one, or an operator replayed one), so workers need not poll tightly. `kinds`, when
   * given, are the only kinds of job that became due; undefined means any. Returns an unsubscribe
   * function. Stores without such a channel rely on the worker's poll.
   */
  subscribe?(onDue: (kinds?: ReadonlySet<JobKind>) => void): () => Promise<void>;
  close(): Promise<void>;
}
