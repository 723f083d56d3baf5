// Property-based fuzzing of the receiver core against real stores: signed bodies, mostly mutated
// examples of the guide, that reach the store. Whatever the body, the answer is 2xx or 4xx (never
// 5xx), nothing refused is stored, and the store still answers at the end.
//
// A failure prints fast-check's report with the seed and the counterexample's path; to replay it,
// pass both to fc.assert (`{ seed, path }`) in `fuzz` below.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createReceiver } from '../../src/receiver/receiver.ts';
import { sign } from '../../src/signature/sign.ts';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { dropSchema, PG_URL, SECRET, tempDir, uniqueSchema } from '../helpers/index.ts';

const SEED = 20_240_611;
/** Bodies per run, sent at once: the stores commit them together, as under real load. */
const BATCH = 20;
/** Runs per engine: RUNS * BATCH bodies (10,000 by default). FUZZ_RUNS overrides it. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 500);

const seeds = Object.values(examplePayloads) as unknown as Record<string, unknown>[];
const j = (value: unknown) => JSON.stringify(value);

/** Numbers a JSON parser, a validator and two SQL engines may disagree about, as JSON text. */
const oddNumber = fc.oneof(
  fc.constantFrom(
    '1e308',
    '-1e308',
    '-0',
    '0',
    '0.0',
    '-1',
    '1.5',
    '1e-320',
    '1E3',
    '4102444800',
    '4102444801',
    '9007199254740993',
    '123456789012345678901234567890',
    '1711234601',
  ),
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(j),
);

/** Strings as JSON text: lone surrogates and NUL through escapes, RTL, emoji, very long ones. */
const oddString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }).map(j),
  fc.constantFrom(
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"evt_\\ud83d"',
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\u202eevt_rtl"',
    '"evt_😀"',
    '"\\ud83d\\ude00"',
    '"NaN"',
    '"Infinity"',
    '"-0"',
    '"1e308"',
    '" "',
    '"\\t"',
    '""',
  ),
  fc.constantFrom(257, 1024).map((n) => j('x'.repeat(n))),
  fc.constantFrom(128, 129).map((n) => j(`é${'é'.repeat(n - 1)}`)),
);

/** Rare, because each costs a lot to sign and parse: a 200 KB string, a 100 KB key. */
const huge = (n: number) => fc.constant(j('x'.repeat(n)));

const deep = fc
  .tuple(
    fc.oneof({ weight: 9, arbitrary: fc.nat(50) }, { weight: 1, arbitrary: fc.constant(5000) }),
    fc.boolean(),
  )
  .map(([n, arrays]) =>
    arrays ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`,
  );

const oddValue = fc.oneof(
  oddNumber,
  oddString,
  deep,
  fc.constantFrom('null', 'true', '[]', '{}', '{"__proto__":{"polluted":1}}', '{"a":1,"a":2}'),
  fc.jsonValue({ maxDepth: 3 }).map(j),
);

const oddKey = fc.oneof(
  fc.constantFrom(
    '"__proto__"',
    '"constructor"',
    '"prototype"',
    '"\\u0000"',
    '"\\ud800"',
    '"id"',
    '"\\u0069d"',
  ),
  fc.constant(j('k'.repeat(1000))),
  fc.string({ unit: 'binary', maxLength: 20 }).map(j),
);

const rareHuge = fc.oneof(
  { weight: 1, arbitrary: fc.tuple(fc.constant(j('k'.repeat(100_000))), fc.constant('1')) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('"note"'), huge(200_000)) },
);

/** One field of an envelope: the seed's value most of the time, otherwise something odd. */
function field(seedText: string | undefined, odd: fc.Arbitrary<string>) {
  return fc.oneof(
    { weight: 17, arbitrary: fc.constant(seedText) },
    { weight: 2, arbitrary: odd.map((v): string | undefined => v) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

/** `data` of a seed with up to three of its fields replaced or added with odd values. */
function mutatedData(data: Record<string, unknown>) {
  const keys = Object.keys(data).map(j);
  return fc
    .array(fc.tuple(keys.length > 0 ? fc.oneof(fc.constantFrom(...keys), oddKey) : oddKey, oddValue), {
      maxLength: 3,
    })
    .map((changes) => {
      const entries = Object.entries(data).map(([k, v]): [string, string] => [j(k), j(v)]);
      for (const [key, value] of changes) {
        const at = entries.findIndex(([k]) => k === key);
        if (at === -1) entries.push([key, value]);
        else entries[at] = [key, value];
      }
      return `{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`;
    });
}

/** A signed-to-be envelope: a seed from the guide, mutated. Ids are fresh most of the time. */
const mutatedSeed = fc
  .constantFrom(...seeds)
  .chain((seed) =>
    fc.record({
      id: fc.oneof(
        { weight: 16, arbitrary: fc.uuid().map((u) => j(`evt_fz_${u}`)) },
        { weight: 2, arbitrary: fc.constant(j(seed.id)) },
        { weight: 2, arbitrary: fc.oneof(oddString, oddValue) },
      ),
      type: fc.oneof(
        { weight: 16, arbitrary: fc.constant(j(seed.type)) },
        { weight: 2, arbitrary: fc.constantFrom(...seeds.map((s) => j(s.type))) },
        { weight: 1, arbitrary: oddString },
        { weight: 1, arbitrary: oddValue },
      ),
      version: field(j(seed.version), oddValue),
      created: field(j(seed.created), fc.oneof(oddNumber, oddValue)),
      data: fc.oneof(
        { weight: 3, arbitrary: fc.constant(j(seed.data)) },
        { weight: 6, arbitrary: mutatedData(seed.data as Record<string, unknown>) },
        { weight: 1, arbitrary: oddValue },
      ),
      metadata: field(
        j(seed.metadata),
        fc.oneof(
          oddString.map((s) => `{"environment":${s}}`),
          oddValue,
        ),
      ),
      extra: fc.oneof(
        { weight: 199, arbitrary: fc.array(fc.tuple(oddKey, oddValue), { maxLength: 2 }) },
        { weight: 1, arbitrary: rareHuge.map((entry) => [entry]) },
      ),
    }),
  )
  .map(({ extra, ...fields }) => {
    const entries = Object.entries(fields)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => `${j(k)}:${v}`);
    for (const [k, v] of extra) entries.push(`${k}:${v}`);
    return `{${entries.join(',')}}`;
  });

/** Anything at all: some JSON, some not. */
const anyBody = fc.oneof(fc.json({ maxDepth: 4 }), fc.string({ unit: 'binary', maxLength: 200 }));

const body = fc.oneof({ weight: 19, arbitrary: mutatedSeed }, { weight: 1, arbitrary: anyBody });

/** The envelope id the body claims, when it claims a string one (JSON.parse keeps the last). */
function claimedId(text: string): string | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && 'id' in value && typeof value.id === 'string')
      return value.id;
  } catch {}
  return undefined;
}

async function fuzz(store: InboxStore, canLookUp: (id: string) => boolean): Promise<void> {
  await store.migrate();
  const receiver = createReceiver({ secrets: [SECRET], store, logger: silentLogger() });
  const accepted = new Set<string>();
  let sent = 0;
  let refused = 0;
  const deliver = async (text: string) => {
    const raw = Buffer.from(text, 'utf8');
    const res = await receiver.handle({
      headers: {
        'content-type': 'application/json',
        'x-procureiq-signature': sign(SECRET, raw),
        'x-procureiq-delivery': 'dlv_fuzz',
      },
      body: raw,
    });
    return { text, raw, status: res.status, answer: res.body, id: claimedId(text) };
  };
  await fc.assert(
    fc.asyncProperty(fc.array(body, { minLength: BATCH, maxLength: BATCH }), async (texts) => {
      const results = await Promise.all(texts.map(deliver));
      sent += results.length;
      for (const r of results) {
        if (r.status < 200 || r.status >= 500 || (r.status >= 300 && r.status < 400)) {
          throw new Error(`answered ${r.status} ${j(r.answer)} to ${r.text.slice(0, 300)}`);
        }
        if (r.status < 300) {
          assert.ok(r.id !== undefined, 'an accepted body has a string id');
          accepted.add(r.id);
        }
      }
      const rows = await Promise.all(
        results.map((r) => (r.id !== undefined && canLookUp(r.id) ? store.get(r.id) : undefined)),
      );
      for (const [i, r] of results.entries()) {
        const row = rows[i];
        if (r.status < 300) {
          assert.ok(row, 'an accepted event is stored');
          continue;
        }
        refused++;
        if (row === undefined) continue;
        if (!accepted.has(r.id as string))
          assert.equal(row, null, `refused (${r.status}) but stored: ${r.text.slice(0, 300)}`);
        else assert.notDeepEqual(Buffer.from(row?.rawBody ?? []), r.raw, 'refused body stored');
      }
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
  await store.ping();
  const counts = await store.countByStatus();
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  assert.equal(total, accepted.size, 'the store holds exactly the accepted events');
  // Both kinds must be well represented, or the fuzzing tests little.
  assert.ok(accepted.size > sent / 4, `only ${accepted.size} of ${sent} bodies reached the store`);
  assert.ok(refused > sent / 20, `only ${refused} of ${sent} bodies were refused`);
}

describe('receiver fuzzing (fast-check)', () => {
  it(`SQLite: ${RUNS * BATCH} signed bodies, never 5xx, nothing refused stored`, async () => {
    const tmp = tempDir();
    const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
    try {
      await fuzz(store, () => true);
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });

  const schema = uniqueSchema('piq_fuzz');
  after(() => dropSchema(schema));

  it(`PostgreSQL: ${RUNS * BATCH} signed bodies, never 5xx, nothing refused stored`, async () => {
    const store = new PostgresStore({ connectionString: PG_URL, schema });
    try {
      // PostgreSQL text cannot hold NUL, so such an id is looked up nowhere (and never stored).
      await fuzz(store, (id) => !id.includes('\u0000'));
    } finally {
      await store.close();
    }
  });
});
