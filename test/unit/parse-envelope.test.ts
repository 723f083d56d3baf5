import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findDuplicateTopLevelKey, parseEnvelope } from '../../src/receiver/parse-envelope.ts';
import { PayloadError } from '../../src/util/errors.ts';

const b = (s: string) => Buffer.from(s);
const ok = '{"id":"evt_1","type":"order.created","created":1,"data":{}}';

describe('parseEnvelope', () => {
  it('parses a minimal envelope', () => {
    assert.equal(parseEnvelope(b(ok)).id, 'evt_1');
  });

  it('refuses what is not an envelope, with a precise reason', () => {
    const cases: [string, RegExp][] = [
      ['{', /not valid JSON/],
      ['[1]', /must be a JSON object/],
      ['null', /must be a JSON object/],
      ['{"type":"a","created":1,"data":{}}', /"id" must be a non-empty string/],
      ['{"id":7,"type":"a","created":1,"data":{}}', /"id" must be a non-empty string/],
      ['{"id":"e","created":1,"data":{}}', /"type" must be a non-empty string/],
      ['{"id":"e","type":"a","created":"1","data":{}}', /"created" must be a number/],
      ['{"id":"e","type":"a","created":1,"data":[]}', /"data" must be an object/],
      ['{"id":"e","type":"a","created":1}', /"data" must be an object/],
      [
        '{"id":"e","type":"a","created":1e308,"data":{}}',
        /"created" must be an integer number of unix seconds/,
      ],
      ['{"id":"e","type":"a","created":1.5,"data":{}}', /"created" must be an integer/],
      ['{"id":"e","type":"a","created":-1,"data":{}}', /"created" must be an integer/],
      ['{"id":"e","type":"a","created":4102444801,"data":{}}', /"created" must be an integer/],
      [`{"id":"${'e'.repeat(257)}","type":"a","created":1,"data":{}}`, /"id" must be at most 256 bytes/],
      [`{"id":"e","type":"${'a'.repeat(257)}","created":1,"data":{}}`, /"type" must be at most 256 bytes/],
      ['{"id":"e 1","type":"a","created":1,"data":{}}', /"id" must contain only printable/],
      ['{"id":"e\\t","type":"a","created":1,"data":{}}', /"id" must contain only printable/],
      ['{"id":"\\ud800","type":"a","created":1,"data":{}}', /"id" must contain only printable/],
      ['{"id":"e","type":"a\\u0000","created":1,"data":{}}', /"type" must contain only printable/],
    ];
    for (const [body, reason] of cases) {
      assert.throws(
        () => parseEnvelope(b(body)),
        (e: Error) => e instanceof PayloadError && reason.test(e.message),
        body,
      );
    }
    assert.throws(() => parseEnvelope(Buffer.from([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
  });

  it('refuses a repeated top-level key, also when written with an escape', () => {
    assert.throws(
      () => parseEnvelope(b('{"id":"evt_1","type":"a","created":1,"data":{},"id":"evt_2"}')),
      /"id" more than once/,
    );
    assert.throws(
      () => parseEnvelope(b('{"id":"evt_1","\\u0069d":"evt_2","type":"a","created":1,"data":{}}')),
      /"id"/,
    );
    // Repeats inside nested objects are data, not the envelope.
    assert.equal(findDuplicateTopLevelKey('{"data":{"a":1,"b":{"a":2}},"x":"{\\"data\\":1}","a":1}'), null);
  });

  it('a __proto__ key pollutes nothing', () => {
    const body =
      '{"id":"e","type":"a","created":1,"data":{"__proto__":{"polluted":true}},"__proto__":{"admin":true}}';
    const parsed = parseEnvelope(b(body));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).admin, undefined);
    assert.equal(Object.hasOwn(parsed, '__proto__'), false);
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
    assert.equal(Object.hasOwn(parsed.data, '__proto__'), false);
  });
});
