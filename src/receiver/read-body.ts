import type { IncomingMessage } from 'node:http';
import { BodyTooLargeError } from '../util/errors.ts';

/**
 * Reads a request body up to `limit` bytes. A declared `content-length` over the limit is refused
 * before a byte is read; a chunked body is cut off as soon as it passes the limit, so an oversized
 * upload is never buffered whole.
 */
export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new BodyTooLargeError(limit));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.on('error', (error) => {
      if (done) return;
      done = true;
      reject(error);
    });
    req.on('aborted', () => {
      if (done) return;
      done = true;
      reject(new Error('request aborted by the client'));
    });
  });
}
