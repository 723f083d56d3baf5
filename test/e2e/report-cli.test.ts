// `report` and `projections export` as a user runs them: the built CLI in a child process, on a
// SQLite file and on a PostgreSQL schema holding a known set of events, projected by the CLI's own
// `projections rebuild`.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { EXPECTED, reportEvents, storeReportEvents } from '../fixtures/report-events.ts';
import { dropSchema, PG_URL, runCli, tempDir, uniqueSchema } from '../helpers/index.ts';

const engines: {
  name: string;
  open: () => Promise<{ db: string; store: InboxStore; cleanup: () => Promise<void> }>;
}[] = [
  {
    name: 'SQLite',
    open: async () => {
      const tmp = tempDir();
      const path = join(tmp.dir, 'inbox.db');
      return { db: `sqlite:${path}`, store: new SqliteStore({ path }), cleanup: async () => tmp.cleanup() };
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const schema = uniqueSchema();
      return {
        db: `${PG_URL}?schema=${schema}`,
        store: new PostgresStore({ connectionString: PG_URL, schema }),
        cleanup: () => dropSchema(schema),
      };
    },
  },
];

/** Splits RFC 4180 CSV text into records (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
  }
  assert.equal(field, '', 'the last record ends with CRLF');
  return records;
}

for (const engine of engines) {
  describe(`report and export CLI on ${engine.name}`, () => {
    let db: string;
    let cleanup: () => Promise<void>;

    before(async () => {
      const opened = await engine.open();
      db = opened.db;
      cleanup = opened.cleanup;
      await opened.store.migrate();
      await storeReportEvents(opened.store, reportEvents(Math.floor(Date.now() / 1000)));
      await opened.store.close();
      const rebuilt = await runCli(['projections', 'rebuild', '--db', db]);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
    });
    after(async () => {
      await cleanup?.();
    });

    test('report --json prints every section with the seeded numbers', async () => {
      const { code, stdout, stderr } = await runCli(['report', '--json', '--db', db]);
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout) as Record<string, unknown>;
      for (const section of Object.keys(EXPECTED))
        assert.deepEqual(report[section], EXPECTED[section as keyof typeof EXPECTED]);
      const production = JSON.parse(
        (await runCli(['report', '--json', '--environment', 'production', '--since', '30d', '--db', db]))
          .stdout,
      ) as typeof EXPECTED;
      assert.equal(production.orders.byStatus.created, 0);
    });

    test('report --csv prints section,metric,key,value rows, quoted where needed', async () => {
      const { code, stdout, stderr } = await runCli(['report', '--csv', '--db', db]);
      assert.equal(code, 0, stderr);
      const rows = parseCsv(stdout);
      assert.deepEqual(rows[0], ['section', 'metric', 'key', 'value']);
      const has = (row: string[]) =>
        assert.ok(
          rows.some((r) => r.join('|') === row.join('|')),
          row.join(','),
        );
      has(['orders', 'byStatus', 'shipped', '1']);
      has(['orders', 'gmvByCurrency', 'USD', '155']);
      has(['payments', 'topFailureReasons', 'insufficient_funds, "retry"', '1']);
      has(['support', 'csatAverage', '', '3.75']);
      has(['searches', 'medianDurationMs', '', '1200']);
    });

    test('report without a format reads as text; bad input exits 2 with what to fix', async () => {
      const text = await runCli(['report', '--db', db]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /cancellation rate:\s+20\.0%/);
      assert.match(text.stdout, /CSAT average:\s+3\.75 from 4 rating/);
      const since = await runCli(['report', '--since', 'last tuesday', '--db', db]);
      assert.equal(since.code, 2);
      assert.match(since.stderr, /--since "last tuesday" is not a time/);
      const env = await runCli(['report', '--environment', 'staging', '--db', db]);
      assert.equal(env.code, 2);
      assert.match(env.stderr, /environment "staging" must be production or sandbox/);
      const both = await runCli(['report', '--json', '--csv', '--db', db]);
      assert.notEqual(both.code, 0);
      assert.match(both.stderr, /cannot be used with/);
    });

    test('projections export streams a table as CSV and as NDJSON', async () => {
      const csv = await runCli([
        'projections',
        'export',
        'procureiq_payments',
        '--format',
        'csv',
        '--db',
        db,
      ]);
      assert.equal(csv.code, 0, csv.stderr);
      const rows = parseCsv(csv.stdout);
      const header = rows[0] ?? [];
      assert.equal(header[0], 'payment_id');
      assert.equal(rows.length, 1 + 6);
      const reason = header.indexOf('reason');
      const pay4 = rows.find((r) => r[0] === 'pay_4');
      assert.equal(pay4?.[reason], 'insufficient_funds, "retry"');

      const nd = await runCli(['projections', 'export', 'orders', '--format', 'ndjson', '--db', db]);
      assert.equal(nd.code, 0, nd.stderr);
      const lines = nd.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        lines.map((l) => l.order_id),
        ['ord_1', 'ord_2', 'ord_3', 'ord_4', 'ord_old', 'ord_sandbox'],
      );
      const first = lines[0] ?? {};
      assert.equal(first.status, 'delivered');
      assert.equal(first.total_amount, 100);
      assert.equal(typeof first.last_event_created, 'number');
      assert.equal(first.tracking_number, 'TRK');

      const unknown = await runCli(['projections', 'export', 'procureiq_events', '--db', db]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no projected table "procureiq_events"; export one of procureiq_orders/);
      const format = await runCli(['projections', 'export', 'orders', '--format', 'xml', '--db', db]);
      assert.equal(format.code, 2);
      assert.match(format.stderr, /--format must be one of csv, ndjson, not "xml"/);
    });
  });
}
