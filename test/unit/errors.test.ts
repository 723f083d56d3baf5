import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { toHttpResponse } from '../../src/receiver/http-errors.ts';
import {
  BodyTooLargeError,
  deserializeError,
  PayloadError,
  ProcureIqWebhooksError,
  type SerializedError,
  ShuttingDownError,
  SignatureError,
  StoreUnavailableError,
  serializeError,
  UnsupportedMediaTypeError,
} from '../../src/util/errors.ts';

/** Sends a value through a real MessagePort, as between the writer thread and the main thread. */
function acrossThreads<T>(value: T): T {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(value);
  const received = receiveMessageOnPort(port2)?.message as T;
  port1.close();
  return received;
}

describe('errors', () => {
  it('each class carries its HTTP status, read by toHttpResponse', () => {
    const cases: [Error, number, string][] = [
      [new SignatureError('bad'), 401, 'signature_invalid'],
      [new PayloadError('bad'), 400, 'payload_invalid'],
      [new BodyTooLargeError(10), 413, 'body_too_large'],
      [new UnsupportedMediaTypeError('text/plain'), 415, 'unsupported_media_type'],
      [new StoreUnavailableError('down'), 503, 'store_unavailable'],
      [new ShuttingDownError(), 503, 'shutting_down'],
      [new TypeError('oops'), 500, 'internal_error'],
    ];
    for (const [error, status, code] of cases) {
      const res = toHttpResponse(error);
      assert.equal(res.status, status, error.name);
      assert.deepEqual((res.body.error as { code: string }).code, code);
    }
    assert.deepEqual(toHttpResponse(new TypeError('secret inside'), 'id-1').body, {
      error: { code: 'internal_error', message: 'internal error', errorId: 'id-1' },
    });
    assert.equal(toHttpResponse(new StoreUnavailableError('down')).headers?.['retry-after'], '5');
  });

  it('an error sent across a thread boundary comes back as its class', () => {
    const plain = acrossThreads(new PayloadError('too big'));
    assert.equal(plain instanceof PayloadError, false, 'structured clone alone loses the class');

    const back = deserializeError(
      acrossThreads<SerializedError>(serializeError(new PayloadError('too big'))),
    );
    assert.ok(back instanceof PayloadError);
    assert.ok(back instanceof ProcureIqWebhooksError);
    assert.equal(back.message, 'too big');
    assert.equal(back.code, 'payload_invalid');
    assert.equal(back.status, 400);

    const unavailable = deserializeError(acrossThreads(serializeError(new StoreUnavailableError('busy'))));
    assert.ok(unavailable instanceof StoreUnavailableError);
    assert.equal(toHttpResponse(unavailable).status, 503);

    const other = deserializeError(
      acrossThreads(
        serializeError(Object.assign(new Error('x'), { name: 'SqliteError', code: 'SQLITE_FULL' })),
      ),
    );
    assert.equal(other.name, 'SqliteError');
    assert.equal((other as Error & { code: string }).code, 'SQLITE_FULL');
    assert.equal(other instanceof ProcureIqWebhooksError, false);
    // A name that only looks like a key of the registry builds no class.
    assert.equal(
      deserializeError({ name: 'constructor', message: 'm' }) instanceof ProcureIqWebhooksError,
      false,
    );
  });
});
