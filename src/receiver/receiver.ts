import { randomUUID } from 'node:crypto';
import { validateKnownEvent } from '../events/catalogue.ts';
import { createLogSampler, type LogSampler } from '../logging/log-sampler.ts';
import type { Logger } from '../logging/logger.ts';
import type { ProjectedEvent } from '../projections/statements.ts';
import { SIGNATURE_HEADER } from '../signature/sign.ts';
import { verifySignature } from '../signature/verify-signature.ts';
import {
  type Environment,
  HANDLERS,
  type InboxStore,
  type InsertResult,
  type NewJob,
  type TransactionalStatement,
} from '../store/inbox-store.ts';
import {
  BodyTooLargeError,
  ShuttingDownError,
  SignatureError,
  StoreUnavailableError,
  toError,
  UnsupportedMediaTypeError,
} from '../util/errors.ts';
import type { Dispatcher } from '../worker/worker.ts';
import { type HttpResponse, toHttpResponse } from './http-errors.ts';
import { parseEnvelope } from './parse-envelope.ts';

/** What the receiver needs of the store: the durable insert. */
export type ReceiverStore = Pick<InboxStore, 'insertIfAbsent' | 'projectsAtInsert'>;

/** A request as any server sees it: lower-cased headers and the exact raw body. */
export interface IncomingDelivery {
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  body: Uint8Array;
  remoteAddress?: string | undefined;
}

/** What happened to one delivery, for metrics, logs and alerts. */
export interface DeliveryOutcome {
  outcome:
    | 'ok'
    | 'duplicate'
    | 'invalid'
    | 'unhandled'
    | 'bad_signature'
    | 'bad_request'
    | 'too_large'
    | 'unsupported_media_type'
    | 'unavailable'
    | 'internal_error';
  status: number;
  environment: Environment;
  eventId?: string;
  eventType?: string;
  secretIndex?: number;
  remoteAddress?: string | undefined;
  /** The envelope's `metadata.environment`, when it contradicts the endpoint. */
  environmentMismatch?: string;
  /** How long storing the event took, waiting for its commit included (ms; answered deliveries). */
  storeMs?: number;
}

export interface ReceiverOptions {
  /** Secrets that verify this endpoint's deliveries; any one matches. */
  secrets: readonly string[];
  store: ReceiverStore;
  logger: Logger;
  /** @defaultValue 'production' */
  environment?: Environment;
  /** @defaultValue 1 MiB */
  maxBodyBytes?: number;
  /**
   * Decides at insert time whether a worker will take events of this type, so events no handler
   * wants are stored as `unhandled` without costing the worker a claim. @defaultValue always 'pending'
   */
  initialStatus?: (type: string) => 'pending' | 'unhandled';
  /**
   * The route jobs a valid event gets (one per matching route), stored with it in the same write.
   * An event no handler wants is still `pending` when a route wants it.
   */
  routeJobs?: (event: { type: string; environment: Environment; envelope: unknown }) => NewJob[];
  /**
   * The projections job a valid event gets. Unlike a route it does not make the event wanted: an
   * event only projected is still stored `unhandled`.
   */
  projectionJobs?: (event: { type: string }) => NewJob[];
  /**
   * The projection writes of an event that gets a projections job, for a store that applies them
   * in the insert's transaction (`InboxStore.projectsAtInsert`): then the job is only the fallback.
   */
  projectionStatements?: (event: ProjectedEvent) => TransactionalStatement[];
  /** New route jobs were stored: their lanes may claim. */
  onRouted?: () => void;
  /**
   * A projections job was stored (the store does not project at insert, or that write failed):
   * the projections runner may claim.
   */
  onProjectionJob?: () => void;
  /** 1 + the retries allowed for this type. @defaultValue 4 */
  maxAttemptsFor?: (type: string) => number;
  /**
   * A local worker to hand new pending events to: leased in the same write that stores them
   * when it has room, otherwise woken to claim them.
   */
  dispatcher?: Dispatcher;
  /** Called once per delivery with its outcome (metrics, alerts). */
  onOutcome?: (outcome: DeliveryOutcome) => void;
  /** Deliveries whose id this says yes to are not logged once answered (the warm-up's own). */
  unlogged?: (eventId: string) => boolean;
  /** While false, deliveries get 503 (shutdown). */
  isAccepting?: () => boolean;
  /**
   * Which bad-signature warnings are logged. @defaultValue the first 5 per source address a minute,
   * then one summary line per source
   */
  badSignatureLog?: LogSampler;
}

export interface Receiver {
  /** Handles one delivery: verify, parse, store durably, answer. Never throws. */
  handle(delivery: IncomingDelivery): Promise<HttpResponse>;
  /** The answer for a body cut off at the size limit by an adapter (413), counted like any other. */
  tooLarge(): HttpResponse;
  readonly maxBodyBytes: number;
}

const ACK_OK: HttpResponse = Object.freeze({ status: 200, body: Object.freeze({ status: 'ok' }) });
const ACK_DUPLICATE: HttpResponse = Object.freeze({
  status: 200,
  body: Object.freeze({ status: 'duplicate' }),
});

/**
 * The runtime-neutral receiver: `(headers, rawBody) -> { status, body }`. Server adapters (node:http,
 * Express, fetch-style) only collect the body and write the answer.
 */
export function createReceiver(options: ReceiverOptions): Receiver {
  const environment = options.environment ?? 'production';
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const secrets = options.secrets.filter((s) => s !== '');
  const log = options.logger;
  const badSignatureLog =
    options.badSignatureLog ??
    createLogSampler({
      logger: log,
      summary: (n) => `suppressed ${n} more bad-signature warnings from this source in the last minute`,
    });

  function refuse(error: unknown, outcome: DeliveryOutcome['outcome'], extra: Partial<DeliveryOutcome> = {}) {
    const response = toHttpResponse(error);
    options.onOutcome?.({ outcome, status: response.status, environment, ...extra });
    return response;
  }

  /** A failure of ours, not of the delivery or the store's availability: 500 with an id that is logged. */
  function internalError(error: unknown, extra: Partial<DeliveryOutcome> = {}): HttpResponse {
    const errorId = randomUUID();
    log.error(
      { errorId, eventId: extra.eventId, eventType: extra.eventType, err: toError(error) },
      'internal error while receiving a delivery',
    );
    const response = toHttpResponse(error, errorId);
    options.onOutcome?.({ outcome: 'internal_error', status: response.status, environment, ...extra });
    return response;
  }

  async function handle(delivery: IncomingDelivery): Promise<HttpResponse> {
    try {
      return await receive(delivery);
    } catch (error) {
      return internalError(error);
    }
  }

  async function receive(delivery: IncomingDelivery): Promise<HttpResponse> {
    const { headers, body } = delivery;
    const remoteAddress = delivery.remoteAddress;
    if (options.isAccepting && !options.isAccepting()) return refuse(new ShuttingDownError(), 'unavailable');
    if (body.byteLength > maxBodyBytes) return refuse(new BodyTooLargeError(maxBodyBytes), 'too_large');

    const contentType = header(headers, 'content-type');
    if (!isJsonContentType(contentType)) {
      return refuse(new UnsupportedMediaTypeError(contentType), 'unsupported_media_type');
    }

    const verified = verifySignature(secrets, body, headers[SIGNATURE_HEADER]);
    if (!verified.ok) {
      const message = SIGNATURE_MESSAGES[verified.reason];
      if (badSignatureLog.allow(remoteAddress))
        log.warn({ outcome: 'bad_signature', reason: verified.reason, remoteAddress, environment }, message);
      return refuse(new SignatureError(message), 'bad_signature', { remoteAddress });
    }

    let envelope: ReturnType<typeof parseEnvelope>;
    try {
      envelope = parseEnvelope(body);
    } catch (error) {
      log.warn(
        { outcome: 'bad_request', remoteAddress, err: toError(error).message },
        'refused a malformed delivery',
      );
      return refuse(error, 'bad_request', { secretIndex: verified.secretIndex });
    }

    // A sandbox event on the production endpoint (or the reverse) is stored for operators to see,
    // as invalid, so no handler mixes it into the other environment.
    const claimedEnvironment = envelope.metadata?.environment;
    const mismatch =
      typeof claimedEnvironment === 'string' && claimedEnvironment !== environment
        ? claimedEnvironment
        : undefined;
    const validationError = mismatch
      ? `metadata.environment is ${JSON.stringify(mismatch)} but the event was delivered to the ${environment} endpoint`
      : validateKnownEvent(envelope);
    const handled =
      validationError === null && (options.initialStatus?.(envelope.type) ?? 'pending') === 'pending';
    const routed =
      validationError === null && options.routeJobs
        ? options.routeJobs({ type: envelope.type, environment, envelope })
        : [];
    const maxAttempts = options.maxAttemptsFor?.(envelope.type) ?? 4;
    const wanted: NewJob[] = handled ? [{ consumer: HANDLERS, maxAttempts }, ...routed] : routed;
    const projected =
      validationError === null ? (options.projectionJobs?.({ type: envelope.type }) ?? []) : [];
    const jobs = projected.length > 0 ? [...wanted, ...projected] : wanted;
    const status = validationError !== null ? 'invalid' : wanted.length > 0 ? 'pending' : 'unhandled';
    const deliveryId = header(headers, 'x-procureiq-delivery') ?? null;
    const receivedAt = Date.now();
    const projection =
      projected.length > 0 && options.store.projectsAtInsert
        ? options.projectionStatements?.({
            id: envelope.id,
            type: envelope.type,
            created: envelope.created,
            environment,
            receivedAt,
            data: envelope.data as Record<string, unknown>,
          })
        : undefined;
    const dispatcher = options.dispatcher;
    const lease = handled ? dispatcher?.reserve() : undefined;
    let result: InsertResult;
    try {
      result = await options.store.insertIfAbsent(
        {
          id: envelope.id,
          type: envelope.type,
          environment,
          status,
          created: envelope.created,
          rawBody: body,
          deliveryId,
          timestampHeader: header(headers, 'x-procureiq-timestamp') ?? null,
          receivedAt,
          validationError,
          maxAttempts,
          jobs,
          projection,
          secretIndex: verified.secretIndex,
          sourceAddress: remoteAddress ?? null,
        },
        lease,
      );
    } catch (error) {
      if (lease) dispatcher?.cancel();
      const about = { eventId: envelope.id, eventType: envelope.type };
      // Only a store that is really unavailable earns a 5xx that ProcureIQ retries; anything else
      // would be retried forever and is a bug of ours to find by its error id.
      if (!(error instanceof StoreUnavailableError)) return internalError(error, about);
      log.error({ ...about, err: toError(error) }, 'could not store event');
      return refuse(error, 'unavailable', about);
    }
    const stored = result.outcome === 'inserted';
    if (result.claimed) dispatcher?.accept(result.claimed);
    else if (lease) dispatcher?.cancel();
    if (stored && handled && !result.claimed) dispatcher?.wake();
    if (stored && routed.length > 0) options.onRouted?.();
    // Projected at insert, the event has no projections job: waking the runner would cost the
    // writer a claim that finds nothing, per stored event.
    if (stored && projected.length > 0 && !result.projectedAtInsert) options.onProjectionJob?.();

    const outcome: DeliveryOutcome['outcome'] = !stored ? 'duplicate' : status === 'pending' ? 'ok' : status;
    const fields = {
      eventId: envelope.id,
      eventType: envelope.type,
      deliveryId,
      outcome,
      secretIndex: verified.secretIndex,
    };
    if (options.unlogged?.(envelope.id)) {
      // A warm-up delivery: nothing was stored, so nothing is said to be.
    } else if (status === 'invalid' && stored) {
      log.warn(
        { ...fields, validationError },
        'stored an event that does not match its schema (status invalid)',
      );
    } else if (log.isLevelEnabled('info')) {
      log.info(fields, stored ? 'event stored' : 'duplicate delivery');
    }
    options.onOutcome?.({
      outcome,
      status: 200,
      environment,
      eventId: envelope.id,
      eventType: envelope.type,
      secretIndex: verified.secretIndex,
      remoteAddress,
      storeMs: Date.now() - receivedAt,
      ...(mismatch && stored ? { environmentMismatch: mismatch } : {}),
    });
    return stored ? ACK_OK : ACK_DUPLICATE;
  }

  return { handle, tooLarge: () => refuse(new BodyTooLargeError(maxBodyBytes), 'too_large'), maxBodyBytes };
}

const SIGNATURE_MESSAGES = {
  missing: 'x-procureiq-signature header is missing',
  repeated: 'x-procureiq-signature header is repeated; send exactly one',
  malformed: 'x-procureiq-signature header is malformed; expected sha256=<64 hex digits>',
  mismatch: 'signature does not match the body',
  no_secret: 'no signing secret is configured for this endpoint',
} as const;

function header(headers: IncomingDelivery['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value[0];
}

/** `application/json`, optionally with parameters, or any `+json` type. */
export function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  const semi = value.indexOf(';');
  const type = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}
