import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { sign } from '../../src/signature/sign.ts';
import { verifySignature } from '../../src/signature/verify-signature.ts';
import { signatureVectors } from '../fixtures/signature-vectors.ts';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('signature vectors from peers', () => {
  for (const v of signatureVectors) {
    it(`verifies: ${v.source}`, () => {
      assert.equal(sign(v.secret, utf8(v.body)), v.signature);
      assert.deepEqual(verifySignature([v.secret], utf8(v.body), v.signature), { ok: true, secretIndex: 0 });
    });
    it(`refuses a one-byte change: ${v.source}`, () => {
      const changed = utf8(`${v.body} `);
      assert.deepEqual(verifySignature([v.secret], changed, v.signature), { ok: false, reason: 'mismatch' });
    });
  }

  it('the lower-case \\u001b body is different bytes, so the upper-case signature does not verify it', () => {
    const v = signatureVectors[2]!;
    const lower = v.body.replaceAll('\\u001B', '\\u001b');
    assert.notEqual(lower, v.body);
    assert.equal(verifySignature([v.secret], utf8(lower), v.signature).ok, false);
  });
});

describe('verifySignature', () => {
  const body = utf8('{"id":"evt_1"}');
  const good = sign('s3cret', body);

  it('accepts upper-case hex', () => {
    assert.equal(verifySignature(['s3cret'], body, `sha256=${good.slice(7).toUpperCase()}`).ok, true);
  });

  it('never verifies with an empty secret', () => {
    // A signature really made with the empty key, over an empty and a non-empty body.
    const emptyKeyed = (b: Buffer) => `sha256=${createHmac('sha256', '').update(b).digest('hex')}`;
    assert.deepEqual(verifySignature([''], utf8(''), emptyKeyed(utf8(''))), {
      ok: false,
      reason: 'no_secret',
    });
    assert.deepEqual(verifySignature([''], body, emptyKeyed(body)), { ok: false, reason: 'no_secret' });
    assert.deepEqual(verifySignature(['', ''], body, good), { ok: false, reason: 'no_secret' });
    assert.throws(() => sign('', body), /must not be empty/);
  });

  it('reports which secret matched during rotation', () => {
    assert.deepEqual(verifySignature(['new-secret', 's3cret'], body, good), { ok: true, secretIndex: 1 });
    assert.deepEqual(verifySignature(['s3cret', 'new-secret'], body, good), { ok: true, secretIndex: 0 });
    assert.deepEqual(verifySignature(['', 's3cret'], body, good), { ok: true, secretIndex: 1 });
  });

  it('refuses a missing, malformed or repeated header without throwing', () => {
    const cases: [unknown, string][] = [
      [undefined, 'missing'],
      [null, 'missing'],
      ['', 'missing'],
      [[], 'missing'],
      ['sha256=', 'malformed'],
      ['sha1=0123', 'malformed'],
      [good.slice(0, -2), 'malformed'],
      [`${good}00`, 'malformed'],
      [`sha256=${'z'.repeat(64)}`, 'malformed'],
      ['garbage \u0000\uffff', 'malformed'],
      [[good, good], 'repeated'],
      [`${good}, ${good}`, 'repeated'],
    ];
    for (const [header, reason] of cases) {
      const result = verifySignature(['s3cret'], body, header as string);
      assert.deepEqual(result, { ok: false, reason }, `header ${JSON.stringify(header)}`);
    }
    assert.deepEqual(verifySignature(['s3cret'], body, [good]), { ok: true, secretIndex: 0 });
  });

  it('refuses a signature made with another secret', () => {
    assert.deepEqual(verifySignature(['s3cret'], body, sign('other', body)), {
      ok: false,
      reason: 'mismatch',
    });
  });
});
