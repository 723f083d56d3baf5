import { ConfigError, ProcureIqWebhooksError, toError } from '../util/errors.ts';
import { loadDefaultExport, TS_EXTENSIONS } from '../util/load-module.ts';

/**
 * A route's transform: the default export of a module, given the parsed envelope, answering the
 * body to send, or null to skip this event on this route. It may be async.
 *
 * - a string is sent as UTF-8 with `text/plain; charset=utf-8`;
 * - a Buffer or Uint8Array as is, with `application/octet-stream`;
 * - a plain object or an array as JSON, with `application/json`.
 *
 * @example
 * // transforms/slim.ts
 * export default (event) => ({ id: event.id, orderId: event.data.orderId });
 */
export type TransformFn = (event: unknown) => unknown;

/** The bytes to send and their content type. */
export interface TransformedBody {
  body: Buffer;
  contentType: string;
}

/**
 * A transform threw, or answered something that cannot be sent. The caller treats it like a
 * destination error (the job retries, then dead-letters), since a fixed transform can succeed.
 */
export class TransformError extends ProcureIqWebhooksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('transform_failed', message, options);
  }
}

/** How long a transform may take to answer before its job's attempt fails. */
export const TRANSFORM_TIMEOUT_MS = 10_000;

export const TRANSFORM_EXTENSIONS = new Set([...TS_EXTENSIONS, '.js', '.mjs', '.cjs']);

/**
 * Loads a transform module (`.ts` without a build step, like handler files; or `.js`/`.mjs`/`.cjs`)
 * and answers its default export. Throws a `ConfigError` when the file is missing or its default
 * export is not a function.
 */
export async function loadTransform(file: string): Promise<TransformFn> {
  const { path, exported } = await loadDefaultExport(file, 'transform');
  if (typeof exported !== 'function') {
    throw new ConfigError(
      `transform: ${path} must export default a function (event) => body | null, not ${exported === undefined ? 'nothing' : typeof exported}`,
    );
  }
  return exported as TransformFn;
}

/**
 * The body to send for one event on one route. Without a transform: the exact original bytes, as
 * `application/json`. With one: its answer (see `TransformFn`), or null to skip. The transform gets
 * its own copy of the envelope, so it cannot change what other routes see.
 */
export async function applyTransform(
  fn: TransformFn | undefined,
  event: unknown,
  rawBody: Buffer,
  timeoutMs = TRANSFORM_TIMEOUT_MS,
): Promise<TransformedBody | null> {
  if (!fn) return { body: rawBody, contentType: 'application/json' };
  let result: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    // A transform that never settles fails its attempt: it held one of its lane's rounds, and a
    // reload or a shutdown waiting for that round, for good.
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TransformError(`transform did not answer within ${timeoutMs}ms`)),
        timeoutMs,
      );
    });
    result = await Promise.race([Promise.resolve().then(() => fn(structuredClone(event))), timedOut]);
  } catch (error) {
    if (error instanceof TransformError) throw error;
    throw new TransformError(`transform threw: ${toError(error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  if (result === null) return null;
  if (typeof result === 'string') {
    return { body: Buffer.from(result, 'utf8'), contentType: 'text/plain; charset=utf-8' };
  }
  if (Buffer.isBuffer(result)) return { body: result, contentType: 'application/octet-stream' };
  if (result instanceof Uint8Array) {
    return {
      body: Buffer.from(result.buffer, result.byteOffset, result.byteLength),
      contentType: 'application/octet-stream',
    };
  }
  if (Array.isArray(result) || isPlainObject(result)) {
    let json: string;
    try {
      json = JSON.stringify(result);
    } catch (error) {
      throw new TransformError(`transform returned an object that is not JSON: ${toError(error).message}`, {
        cause: error,
      });
    }
    return { body: Buffer.from(json, 'utf8'), contentType: 'application/json' };
  }
  const what = result === undefined ? 'undefined (return null to skip the event)' : describe(result);
  throw new TransformError(
    `transform returned ${what}; return a string, a Buffer, a plain object or array, or null`,
  );
}

function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    return `a ${value.constructor?.name ?? 'non-plain'} object`;
  }
  return `a ${typeof value}`;
}
