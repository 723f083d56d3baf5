import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyTransform, loadTransform, TransformError } from '../../src/routes/transform.ts';
import { ConfigError } from '../../src/util/errors.ts';

const fixtures = join(import.meta.dirname, '../fixtures/routes/transforms');
const event = { id: 'evt_1', type: 'order.created', data: { orderId: 'ord_42', totalAmount: 750 } };
const raw = Buffer.from(`${JSON.stringify(event)}\n`);

describe('applyTransform', () => {
  it('sends the exact original bytes as JSON without a transform', async () => {
    const out = await applyTransform(undefined, event, raw);
    assert.ok(out);
    assert.equal(out.body, raw);
    assert.equal(out.contentType, 'application/json');
  });

  it('sends a string as UTF-8 text', async () => {
    const out = await applyTransform(() => 'Bestellung ✓', event, raw);
    assert.deepEqual(out, {
      body: Buffer.from('Bestellung ✓', 'utf8'),
      contentType: 'text/plain; charset=utf-8',
    });
  });

  it('sends bytes as octet-stream, honouring a Uint8Array view', async () => {
    const buffer = Buffer.from([1, 2, 3]);
    assert.deepEqual(await applyTransform(() => buffer, event, raw), {
      body: buffer,
      contentType: 'application/octet-stream',
    });
    const view = new Uint8Array([9, 8, 7, 6]).subarray(1, 3);
    const out = await applyTransform(() => view, event, raw);
    assert.deepEqual(out?.body, Buffer.from([8, 7]));
    assert.equal(out?.contentType, 'application/octet-stream');
  });

  it('sends a plain object or an array as JSON', async () => {
    const out = await applyTransform((e) => ({ id: (e as typeof event).id, n: 1 }), event, raw);
    assert.equal(out?.body.toString(), '{"id":"evt_1","n":1}');
    assert.equal(out?.contentType, 'application/json');
    const list = await applyTransform(() => [1, 'a'], event, raw);
    assert.equal(list?.body.toString(), '[1,"a"]');
    const bare = await applyTransform(() => Object.assign(Object.create(null), { a: 1 }), event, raw);
    assert.equal(bare?.body.toString(), '{"a":1}');
  });

  it('skips on null, and awaits an async transform', async () => {
    assert.equal(await applyTransform(() => null, event, raw), null);
    assert.equal(await applyTransform(async () => null, event, raw), null);
    const out = await applyTransform(async () => 'later', event, raw);
    assert.equal(out?.body.toString(), 'later');
  });

  it('gives the transform its own copy of the event', async () => {
    const original = structuredClone(event);
    await applyTransform(
      (e) => {
        (e as typeof event).data.totalAmount = 0;
        return null;
      },
      event,
      raw,
    );
    assert.deepEqual(event, original);
  });

  it('turns a throw or an unusable answer into a TransformError', async () => {
    const cases: [() => unknown, RegExp][] = [
      [
        () => {
          throw new Error('no orderId');
        },
        /^transform threw: no orderId$/,
      ],
      [
        () => {
          throw 'a string';
        },
        /^transform threw: a string$/,
      ],
      [() => Promise.reject(new Error('async boom')), /^transform threw: async boom$/],
      [() => undefined, /returned undefined \(return null to skip the event\)/],
      [() => 42, /returned a number; return a string, a Buffer, a plain object or array, or null$/],
      [() => true, /returned a boolean/],
      [() => new Date(0), /returned a Date object/],
      [() => ({ big: 1n }), /returned an object that is not JSON: .*BigInt/],
    ];
    for (const [fn, message] of cases) {
      await assert.rejects(applyTransform(fn, event, raw), (error: unknown) => {
        assert.ok(error instanceof TransformError, String(error));
        assert.equal(error.code, 'transform_failed');
        assert.match(error.message, message);
        return true;
      });
    }
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await assert.rejects(
      applyTransform(() => circular, event, raw),
      TransformError,
    );
  });
});

describe('applyTransform time limit', () => {
  it('fails a transform that does not answer in time, and waits for one that does', async () => {
    await assert.rejects(
      applyTransform(() => new Promise(() => {}), event, raw, 50),
      (error: unknown) => {
        assert.ok(error instanceof TransformError, String(error));
        assert.match(error.message, /^transform did not answer within 50ms$/);
        return true;
      },
    );
    const slow = await applyTransform(
      () => new Promise((resolve) => setTimeout(() => resolve('late but in time'), 20)),
      event,
      raw,
      2_000,
    );
    assert.equal(slow?.body.toString(), 'late but in time');
  });
});

describe('loadTransform', () => {
  it('loads TypeScript without a build, and .mjs and .cjs modules', async () => {
    const slim = await loadTransform(join(fixtures, 'slim.ts'));
    assert.deepEqual(slim(event), { id: 'evt_1', orderId: 'ord_42' });
    const text = await loadTransform(join(fixtures, 'as-text.mjs'));
    assert.equal(text(event), 'order.created evt_1');
    const legacy = await loadTransform(join(fixtures, 'legacy.cjs'));
    assert.deepEqual(legacy(event), Buffer.from('evt_1'));
    const skip = await loadTransform(join(fixtures, 'async-skip.ts'));
    assert.equal(await applyTransform(skip, { metadata: { environment: 'sandbox' } }, raw), null);
  });

  it('refuses a missing file and a default export that is not a function', async () => {
    await assert.rejects(loadTransform(join(fixtures, 'nope.ts')), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `transform: no file at ${join(fixtures, 'nope.ts')}`);
      return true;
    });
    await assert.rejects(loadTransform(join(fixtures, 'not-a-function.ts')), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(
        error.message,
        /not-a-function\.ts must export default a function \(event\) => body \| null, not object$/,
      );
      return true;
    });
  });
});
