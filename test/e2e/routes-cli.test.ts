// The routes commands through the real CLI (`npm run build` first): routes list | check | test,
// deliveries list, replay --route, and dead-letter list naming the dead consumer. The inbox is a
// real SQLite file whose jobs are driven to their states through the store's own operations.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { sign } from '../../src/signature/sign.ts';
import type { AttemptResult } from '../../src/store/inbox-store.ts';
import { SqliteConnection } from '../../src/store/sqlite/sqlite-connection.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { freePort, REPO, runCli, tempDir } from '../helpers/index.ts';

const SHIP_SECRET = 'ship-forwarding-secret';
const SLIM = join(REPO, 'test', 'fixtures', 'routes', 'transforms', 'slim.ts');

/** Waits until the clock has moved on, so the next write has a later `updated_at`. */
function nextMillisecond(): void {
  const t = Date.now();
  while (Date.now() === t) {
    // spin: a millisecond
  }
}

const result = (outcome: 'succeeded' | 'failed'): AttemptResult => ({
  startedAt: Date.now(),
  finishedAt: Date.now(),
  outcome,
  ...(outcome === 'failed' ? { errorMessage: 'HTTP 500' } : {}),
});

/**
 * evt_a: ship processed, audit dead. evt_b: ship dead, audit processed. evt_c: a pending job of
 * `route:old`, a route the file no longer has. Finished in this order: ship a, ship b, audit b, audit a.
 */
function seed(path: string): void {
  const inbox = new SqliteConnection(path);
  try {
    const jobs = [
      { consumer: 'route:ship', maxAttempts: 3 },
      { consumer: 'route:audit', maxAttempts: 3 },
    ];
    inbox.insertIfAbsent(newEvent('evt_a', { jobs }));
    inbox.insertIfAbsent(newEvent('evt_b', { jobs }));
    inbox.insertIfAbsent(newEvent('evt_c', { jobs: [{ consumer: 'route:old', maxAttempts: 3 }] }));
    const claim = (consumer: string) => {
      const { events } = inbox.claimDue({ owner: 't', consumers: [consumer], limit: 10, leaseMs: 60_000 });
      const byId = new Map(events.map((e) => [e.id, e]));
      return (id: string) => {
        const lease = byId.get(id);
        assert.ok(lease, `${id} claimed on ${consumer}`);
        return lease;
      };
    };
    const ship = claim('route:ship');
    nextMillisecond();
    assert.ok(inbox.complete(ship('evt_a'), result('succeeded')));
    nextMillisecond();
    assert.ok(inbox.deadLetter(ship('evt_b'), result('failed')));
    const audit = claim('route:audit');
    nextMillisecond();
    assert.ok(inbox.complete(audit('evt_b'), result('succeeded')));
    nextMillisecond();
    assert.ok(inbox.deadLetter(audit('evt_a'), result('failed')));
  } finally {
    inbox.close();
  }
}

describe('CLI: routes, deliveries, replay --route', () => {
  const tmp = tempDir();
  const dbPath = join(tmp.dir, 'inbox.db');
  const db = ['--db', `sqlite:${dbPath}`];
  const routesFile = join(tmp.dir, 'routes.yaml');
  const env = { SHIP_SECRET };
  let sink: Server;

  before(async () => {
    sink = createServer((req, res) => {
      req.resume();
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
    const closed = await freePort();
    writeFileSync(
      routesFile,
      [
        'destinations:',
        '  fulfilment:',
        '    type: http',
        `    url: ${url}/ship`,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the routes file's own ${VAR} syntax
        '    secret: ${SHIP_SECRET}',
        '    headers: { x-team: ops }',
        '  ledger:',
        '    type: http',
        `    url: ${url}/audit`,
        '  nowhere:',
        '    type: http',
        `    url: http://127.0.0.1:${closed}/hooks`,
        '    timeout: 2s',
        'routes:',
        '  - name: ship',
        '    match: { types: [order.*], where: { data.totalAmount: { $gte: 500 } } }',
        '    to: fulfilment',
        `    transform: ${SLIM}`,
        '  - name: audit',
        '    match: { types: ["*"] }',
        '    to: ledger',
        '    retrySchedule: [1s]',
        '  - name: lost',
        '    match: { types: [user.*] }',
        '    to: nowhere',
      ].join('\n'),
    );
    seed(dbPath);
  });
  after(async () => {
    await new Promise<void>((r) => sink.close(() => r()));
    tmp.cleanup();
  });

  it('routes list: each route with its destination and job counts, and the orphaned route', async () => {
    const json = await runCli(['routes', 'list', '--routes', routesFile, '--json', ...db], { env });
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout);
    // biome-ignore lint/suspicious/noExplicitAny: checked field by field
    const row = (name: string) => out.routes.find((r: any) => r.name === name);
    assert.deepEqual(
      // biome-ignore lint/suspicious/noExplicitAny: as above
      out.routes.map((r: any) => [r.name, r.destination, r.destinationType, r.breaker]),
      [
        ['ship', 'fulfilment', 'http', 'n/a'],
        ['audit', 'ledger', 'http', 'n/a'],
        ['lost', 'nowhere', 'http', 'n/a'],
      ],
    );
    assert.equal(row('ship').counts.processed, 1);
    assert.equal(row('ship').counts.dead, 1);
    assert.equal(row('audit').counts.processed, 1);
    assert.equal(row('audit').counts.dead, 1);
    assert.equal(row('lost').counts.pending, 0);
    assert.equal(out.orphaned.length, 1);
    assert.equal(out.orphaned[0].route, 'old');
    assert.equal(out.orphaned[0].counts.pending, 1);

    const text = await runCli(['routes', 'list', '--routes', routesFile, ...db], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /ship\s+fulfilment\s+http\s+order\.\*\s+n\/a\s+processed 1, dead 1/);
    assert.match(text.stdout, /Orphaned[^\n]*\nROUTE\s+JOBS\nold\s+pending 1/);
    assert.match(text.stdout, /GET \/admin\/api\/routes/);

    const noFile = await runCli(['routes', 'list', ...db], { env: { ROUTES: '' } });
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /routes list: give the routes file with --routes FILE/);
  });

  it('a routes file with mistakes: every routes command exits 1 with the same messages as serve', async () => {
    const bad = join(tmp.dir, 'mistakes.yaml');
    writeFileSync(
      bad,
      'destinations:\n  fulfilment: { type: http, url: "http://127.0.0.1:9/x" }\n' +
        'routes:\n  - name: ship\n    match: { types: [order.*] }\n    to: fulfilmnet\n',
    );
    for (const args of [['list', ...db], ['check']]) {
      const r = await runCli(['routes', ...args, '--routes', bad], { env });
      assert.equal(r.code, 1, `routes ${args[0]}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /invalid routes file .*mistakes\.yaml:\n {2}- routes\[0\]\.to: no destination "fulfilmnet" \(did you mean "fulfilment"\?\)/,
      );
    }
  });

  it('routes check: ok per reachable destination, the error of the one that is not, exit 1', async () => {
    const r = await runCli(['routes', 'check', '--routes', routesFile], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok\s+fulfilment \(http\)/m);
    assert.match(r.stdout, /^ok\s+ledger \(http\)/m);
    assert.match(
      r.stdout,
      /^ERROR\s+nowhere \(http\)[^\n]*\n\s+http destination "nowhere": .* is unreachable/m,
    );
  });

  it('routes test: which routes an envelope matches, and the body and headers each would send', async () => {
    const envelope = {
      ...examplePayloads['order.created'],
      id: 'evt_file',
      data: { ...examplePayloads['order.created'].data, orderId: 'ord_9', totalAmount: 900 },
    };
    const file = join(tmp.dir, 'event.json');
    writeFileSync(file, JSON.stringify(envelope));
    const r = await runCli(['routes', 'test', file, '--routes', routesFile, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(
      out.routes.map((x: { route: string }) => x.route),
      ['ship', 'audit'],
    );
    const [ship, audit] = out.routes;
    assert.equal(ship.contentType, 'application/json');
    assert.deepEqual(JSON.parse(ship.body), { id: 'evt_file', orderId: 'ord_9' });
    assert.equal(ship.headers['x-team'], 'ops');
    assert.equal(ship.headers['idempotency-key'], 'evt_file');
    assert.equal(ship.headers['x-procureiq-signature'], sign(SHIP_SECRET, ship.body));
    assert.equal(audit.body, JSON.stringify(envelope), 'no transform: the exact bytes');
    assert.equal(audit.headers['x-procureiq-signature'], undefined, 'no secret, no signature');
    assert.notEqual(ship.headers['x-procureiq-delivery'], audit.headers['x-procureiq-delivery']);

    writeFileSync(file, JSON.stringify({ ...envelope, data: { ...envelope.data, totalAmount: 10 } }));
    const small = await runCli(['routes', 'test', file, '--routes', routesFile], { env });
    assert.equal(small.code, 0, small.stderr);
    assert.match(small.stdout, /evt_file \(order\.created, production\) matches 1 of 3 route\(s\)/);
    assert.match(small.stdout, /route audit -> ledger/);
    assert.doesNotMatch(small.stdout, /route ship/);

    const stored = await runCli(['routes', 'test', 'evt_a', '--routes', routesFile, '--json', ...db], {
      env,
    });
    assert.equal(stored.code, 0, stored.stderr);
    assert.deepEqual(
      JSON.parse(stored.stdout).routes.map((x: { route: string }) => x.route),
      ['audit'],
    );

    const missing = await runCli(['routes', 'test', 'evt_nope', '--routes', routesFile, ...db], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no stored event with id evt_nope, and no file of that name/);
  });

  it('deliveries list: route jobs newest first, by route and status', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: checked field by field
    const list = async (...args: string[]): Promise<any[]> => {
      const r = await runCli(['deliveries', 'list', '--json', ...args, ...db]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const all = await list();
    assert.deepEqual(
      all.map((j) => [j.eventId, j.route, j.status, j.attempts]),
      [
        ['evt_a', 'audit', 'dead', 1],
        ['evt_b', 'audit', 'processed', 1],
        ['evt_b', 'ship', 'dead', 1],
        ['evt_a', 'ship', 'processed', 1],
        ['evt_c', 'old', 'pending', 0],
      ],
    );
    assert.equal(all[0].lastError, 'HTTP 500');
    assert.equal(all[0].type, 'order.created');
    assert.ok(Date.parse(all[0].updatedAt) > Date.parse(all[1].updatedAt));
    assert.deepEqual(
      (await list('--route', 'ship')).map((j) => j.eventId),
      ['evt_b', 'evt_a'],
    );
    assert.deepEqual(
      (await list('--status', 'dead')).map((j) => `${j.route}/${j.eventId}`),
      ['audit/evt_a', 'ship/evt_b'],
    );
    assert.equal((await list('--limit', '1')).length, 1);

    const table = await runCli(['deliveries', 'list', '--route', 'audit', ...db]);
    assert.match(table.stdout, /^UPDATED\s+EVENT\s+TYPE\s+ROUTE\s+STATUS\s+ATTEMPTS\s+LAST ERROR$/m);
    assert.match(table.stdout, /evt_a\s+order\.created\s+audit\s+dead\s+1\/3\s+HTTP 500/);
    const bad = await runCli(['deliveries', 'list', '--status', 'lost', ...db]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--status "lost" is not a job status/);
  });

  it('dead-letter list names the dead consumer of each dead letter', async () => {
    const r = await runCli(['dead-letter', 'list', '--json', ...db]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      // biome-ignore lint/suspicious/noExplicitAny: checked field by field
      JSON.parse(r.stdout).map((e: any) => [e.id, e.deadConsumers]),
      [
        ['evt_b', ['route:ship']],
        ['evt_a', ['route:audit']],
      ],
    );
    const table = await runCli(['dead-letter', 'list', ...db]);
    assert.match(table.stdout, /evt_a\s+order\.created\s+dead\s+\d+\s+route:audit/);
  });

  it('replay --route: only that route, only its dead jobs with --status dead', async () => {
    const dry = await runCli(['replay', '--route', 'ship', '--status', 'dead', '--dry-run', ...db]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^1 event\(s\) match; dry run, nothing replayed$/m);

    const run = await runCli(['replay', '--route', 'ship', '--status', 'dead', '--type', 'order.*', ...db]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /replayed 1 of 1 matching event\(s\)/);
    assert.match(run.stderr, /replaying \[.*\] 1\/1/);

    // With the routes file, a replayed job gets its route's own budget: 1 + one retry.
    const byId = await runCli(
      ['replay', '--route', 'audit', '--id', 'evt_a', 'evt_c', '--routes', routesFile, ...db],
      { env },
    );
    assert.equal(byId.code, 1);
    assert.match(byId.stdout, /replayed evt_a on route:audit: due now/);
    assert.match(byId.stderr, /cannot replay evt_c on route:audit: it has no job there/);

    // No filter on a route: every finished job of it (evt_a's; evt_b's is pending again).
    const bare = await runCli(['replay', '--route', 'ship', '--dry-run', ...db]);
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, /^1 event\(s\) match; dry run, nothing replayed$/m);
    const whole = await runCli(['replay', '--dry-run', ...db]);
    assert.equal(whole.code, 2);
    assert.match(whole.stderr, /replay: give --id ID…, or filters/);

    const inbox = new SqliteConnection(dbPath, { readonly: true });
    try {
      const jobs = (id: string) =>
        Object.fromEntries(inbox.get(id)?.jobs.map((j) => [j.consumer, j.status]) ?? []);
      assert.deepEqual(jobs('evt_b'), { 'route:audit': 'processed', 'route:ship': 'pending' });
      assert.deepEqual(jobs('evt_a'), { 'route:audit': 'pending', 'route:ship': 'processed' });
      assert.deepEqual(jobs('evt_c'), { 'route:old': 'pending' }, 'no handlers job was added');
      const audit = inbox.get('evt_a')?.jobs.find((j) => j.consumer === 'route:audit');
      assert.deepEqual(
        [audit?.attempts, audit?.maxAttempts],
        [1, 3],
        "the route's budget, not RETRY_SCHEDULE's",
      );
    } finally {
      inbox.close();
    }
  });
});
