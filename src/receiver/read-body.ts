import type { IncomingMessage } from 'node:http';
import { BodyBudgetError, BodyTimeoutError, BodyTooLargeError } from '../util/errors.ts';
import type { BodyAccount } from './body-budget.ts';

export interface ReadBodyOptions {
  /**
   * The request's account in the in-flight body budget: a declared `content-length` is held
   * before a byte is read, a chunked body chunk by chunk. The caller releases it.
   */
  account?: BodyAccount;
  /** Rejects with `BodyTimeoutError` when the whole body has not arrived by then. */
  timeoutMs?: number;
}

/**
 * Reads a request body up to `limit` bytes. A declared `content-length` over the limit is refused
 * before a byte is read; a chunked body is cut off as soon as it passes the limit, so an oversized
 * upload is never buffered whole.
 */
export function readRawBody(
  req: IncomingMessage,
  limit: number,
  options: ReadBodyOptions = {},
): Promise<Buffer> {
  const declared = req.headers['content-length'];
  const declaredBytes = declared === undefined ? undefined : Number(declared);
  if (declaredBytes !== undefined && declaredBytes > limit) {
    return Promise.reject(new BodyTooLargeError(limit));
  }
  const { account } = options;
  let reserved = 0;
  const reserve = (bytes: number): BodyBudgetError | undefined => {
    if (!account || bytes <= reserved) return undefined;
    const verdict = account.take(bytes - reserved);
    if (verdict === 'ok') {
      reserved = bytes;
      return undefined;
    }
    return new BodyBudgetError(
      verdict === 'budget'
        ? 'too many request bodies are being received at once; retry later'
        : 'too many request bodies are being received at once from this address; retry later',
    );
  };
  // Held before reading, so a flood of large declared bodies is refused without buffering any.
  const refused = declaredBytes !== undefined ? reserve(declaredBytes) : undefined;
  if (refused) return Promise.reject(refused);

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => fail(new BodyTimeoutError(options.timeoutMs as number)), options.timeoutMs);
    function fail(error: Error): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      chunks.length = 0;
      req.pause();
      reject(error);
    }
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) return fail(new BodyTooLargeError(limit));
      const overBudget = reserve(size);
      if (overBudget) return fail(overBudget);
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.on('error', (error) => fail(error));
    // 'close' comes after every request, read or not: build its error (a stack trace, some
    // microseconds) only when the body was still being read.
    req.on('aborted', () => done || fail(new Error('request aborted by the client')));
    req.on('close', () => done || fail(new Error('request closed before its body was read')));
  });
}
