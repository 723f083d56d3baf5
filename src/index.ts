// The public API of procureiq-webhooks. Internals are not exported.
export { parseDuration } from './config/duration.ts';
export {
  type Consumer,
  type ConsumerOptions,
  createConsumer,
  type Duration,
  type ListenOptions,
} from './consumer.ts';
export {
  type AnyEvent,
  catalogueJsonSchema,
  type EventOf,
  type EventType,
  eventSchemas,
  eventTypes,
  isKnownEventType,
  type ProcureIqEvent,
  procureIqEventSchema,
} from './events/catalogue.ts';
export { envelopeSchema } from './events/envelope.ts';
export { examplePayloads } from './events/examples.ts';
export { createLogger, type Logger } from './logging/logger.ts';
export { expressMiddleware } from './receiver/express.ts';
export type { HttpResponse } from './receiver/http-errors.ts';
export {
  createReceiver,
  type DeliveryOutcome,
  type IncomingDelivery,
  type Receiver,
} from './receiver/receiver.ts';
export { webHandler } from './receiver/web.ts';
export { SIGNATURE_HEADER, sign } from './signature/sign.ts';
export { type VerifyResult, verifySignature } from './signature/verify-signature.ts';
export type * from './store/inbox-store.ts';
export { SqliteStore } from './store/sqlite/sqlite-store.ts';
export {
  ConfigError,
  HandlerTimeoutError,
  NonRetryableError,
  PayloadError,
  ProcureIqWebhooksError,
  SignatureError,
  StoreUnavailableError,
} from './util/errors.ts';
export type { AnyHandler, Handler, HandlerContext, HandlerMap, HandlerOptions } from './worker/handlers.ts';
export type { AttemptInfo, DeadLetterInfo } from './worker/worker.ts';
