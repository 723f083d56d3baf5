import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import {
  type CliProcess,
  freePort,
  postSigned,
  REPO,
  runCli,
  SECRET,
  startCli,
  startServer,
  stopProcess,
  tempDir,
  waitFor,
} from '../helpers/index.ts';

describe('CLI: configuration errors stop start-up with a message that says what to fix', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('no secret outside dev mode', async () => {
    const r = await runCli(['serve'], { cwd: tmp.dir, env: { WEBHOOK_SECRET: '', PORT: '0' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /WEBHOOK_SECRET \(--secret\) is required/);
    assert.match(r.stderr, /serve --dev/);
  });

  it('a duration without a unit, and other bad values, all reported together', async () => {
    const r = await runCli(['serve', '--handler-timeout', '30', '--port', 'x'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, RETRY_SCHEDULE: '30s,2' },
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /HANDLER_TIMEOUT \(--handler-timeout\): "30" is not a duration \(add a unit/);
    assert.match(r.stderr, /RETRY_SCHEDULE/);
    assert.match(r.stderr, /PORT \(--port\): "x" is not a whole number/);
  });

  it('an unknown flag', async () => {
    const r = await runCli(['serve', '--prot', '3000'], { cwd: tmp.dir, env: { WEBHOOK_SECRET: SECRET } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown option '--prot'/);
  });

  it('a handlers file that does not exist', async () => {
    const r = await runCli(['serve', '--handlers', './nope.ts'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, PORT: '0', DATABASE_URL: `sqlite:${join(tmp.dir, 'x.db')}` },
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /HANDLERS \(--handlers\): no file at .*nope\.ts/);
  });

  it('a second serve on the same SQLite file', async () => {
    const first = await startServer(tmp.dir);
    try {
      const port = await freePort();
      const r = await runCli(['serve'], {
        cwd: tmp.dir,
        env: {
          WEBHOOK_SECRET: SECRET,
          PORT: String(port),
          DATABASE_URL: `sqlite:${join(tmp.dir, 'inbox.db')}`,
        },
      });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /another procureiq-webhooks process \(pid \d+\) is serving/);
    } finally {
      await stopProcess(first);
    }
  });

  it('a short admin token, and a sandbox secret equal to a production one', async () => {
    const r = await runCli(['serve'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, ADMIN_TOKEN: 'short', WEBHOOK_SECRET_SANDBOX: SECRET, RETENTION: '30' },
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ADMIN_TOKEN \(--admin-token\): use at least 16 characters/);
    assert.match(
      r.stderr,
      /WEBHOOK_SECRET_SANDBOX \(--secret-sandbox\): a sandbox secret is also a production secret/,
    );
    assert.match(r.stderr, /RETENTION \(--retention\): "30" is not a duration/);
  });

  it('serves the sandbox endpoint and the admin API from flags and env', async () => {
    const server = await startServer(tmp.dir, {
      WEBHOOK_SECRET_SANDBOX: 'sandbox-secret-abcdef',
      ADMIN_TOKEN: 'admin-token-abcdef-0123456789',
      DATABASE_URL: `sqlite:${join(tmp.dir, 'sandbox.db')}`,
    });
    try {
      const sent = await runCli(['send', 'order.created', '--sandbox', '--url', `${server.url}/sandbox`], {
        env: { WEBHOOK_SECRET_SANDBOX: 'sandbox-secret-abcdef' },
      });
      assert.match(sent.stdout, /200 ok/);
      const id = /evt_\w+/.exec(sent.stdout)?.[0];
      const res = await fetch(`http://127.0.0.1:${server.port}/admin/api/events?environment=sandbox`, {
        headers: { authorization: 'Bearer admin-token-abcdef-0123456789' },
      });
      const body = (await res.json()) as { events: { id: string; environment: string }[] };
      assert.deepEqual(
        body.events.map((e) => [e.id, e.environment]),
        [[id, 'sandbox']],
      );
      const listed = await runCli([
        'events',
        'list',
        '--environment',
        'sandbox',
        '--json',
        '--db',
        `sqlite:${join(tmp.dir, 'sandbox.db')}`,
      ]);
      assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 1);
    } finally {
      await stopProcess(server);
    }
  });

  it('never logs the secret', async () => {
    const server = await startServer(tmp.dir, { LOG_LEVEL: 'trace' });
    await postSigned(server.url, examplePayloads['order.created'], { secret: 'wrong' });
    await postSigned(server.url, { ...examplePayloads['order.created'], id: 'evt_logged' });
    await stopProcess(server);
    assert.ok(server.stdout().includes('evt_logged'));
    assert.ok(!server.stdout().includes(SECRET) && !server.stderr().includes(SECRET));
  });
});

describe('CLI: send, events, dead-letter, schema', () => {
  const tmp = tempDir();
  let server: CliProcess & { url: string };
  const db = () => ['--db', `sqlite:${join(tmp.dir, 'inbox.db')}`];

  before(async () => {
    server = await startServer(tmp.dir, {
      HANDLERS: join(REPO, 'test', 'fixtures', 'handlers', 'e2e-handlers.ts'),
      RETRY_SCHEDULE: '100ms',
      E2E_LOG: join(tmp.dir, 'runs.log'),
      E2E_NO_CRASH: '1',
      E2E_SLOW_MS: '10',
    });
  });
  after(async () => {
    await stopProcess(server);
    tmp.cleanup();
  });

  it('send --all delivers the 22 examples with fresh ids and prints each status', async () => {
    const r = await runCli(['send', '--all', '--url', server.url, '--secret', SECRET]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('200 ok')).length, 22);
    assert.match(lines.at(-1) ?? '', /sent 22 deliveries .*22 × 200 ok/);
    assert.ok(!r.stdout.includes(examplePayloads['order.created'].id), 'ids are fresh, not the guide’s');
  });

  it('send --duplicate, --bad-signature, --count, --file', async () => {
    const dup = await runCli([
      'send',
      'order.created',
      '--duplicate',
      '--url',
      server.url,
      '--secret',
      SECRET,
    ]);
    assert.match(dup.stdout, /1 × 200 ok, 1 × 200 duplicate/);
    const bad = await runCli([
      'send',
      'order.created',
      '--bad-signature',
      '--url',
      server.url,
      '--secret',
      SECRET,
    ]);
    assert.match(bad.stdout, /401 signature does not match/);
    assert.equal(bad.code, 0, 'the 401 is what --bad-signature expects');
    const wrongSecret = await runCli([
      'send',
      'order.created',
      '--url',
      server.url,
      '--secret',
      'not-the-receivers-secret-0123456789',
    ]);
    assert.match(wrongSecret.stdout, /401 /);
    assert.equal(wrongSecret.code, 1, 'refused deliveries fail the command');
    const many = await runCli([
      'send',
      'user.registered',
      '--count',
      '60',
      '--rate',
      '500',
      '--url',
      server.url,
      '--secret',
      SECRET,
    ]);
    assert.match(many.stdout, /sent 60 deliveries .*60 × 200 ok/);
    const file = join(tmp.dir, 'event.json');
    writeFileSync(
      file,
      JSON.stringify({ ...examplePayloads['ad.budget_exhausted'], id: 'evt_from_file' }, null, 2),
    );
    const fromFile = await runCli(['send', '--file', file, '--url', server.url, '--secret', SECRET]);
    assert.match(fromFile.stdout, /200 ok .*evt_from_file/);
    const unknown = await runCli(['send', 'order.teleported', '--secret', SECRET]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown event type\(s\) order\.teleported/);
  });

  it('send --rate stamps each delivery as it goes, not when the plan was built', async () => {
    const stamps: number[] = [];
    const capture = createServer((req, res) => {
      stamps.push(Number(req.headers['x-procureiq-timestamp']));
      req.resume();
      req.on('end', () => res.end('{"status":"ok"}'));
    });
    await new Promise<void>((resolve) => capture.listen(0, '127.0.0.1', () => resolve()));
    try {
      const url = `http://127.0.0.1:${(capture.address() as AddressInfo).port}/`;
      const r = await runCli([
        'send',
        'order.created',
        '--count',
        '3',
        '--rate',
        '1',
        '--concurrency',
        '1',
        '--url',
        url,
        '--secret',
        SECRET,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(stamps.length, 3);
      // Three sends a second apart: the last stamp is two seconds after the first (built up front,
      // all three carried the same second, or two seconds across a boundary at most one apart).
      assert.ok((stamps[2] ?? 0) - (stamps[0] ?? 0) >= 2, JSON.stringify(stamps));
    } finally {
      await new Promise<void>((resolve) => capture.close(() => resolve()));
    }
  });

  it('events list --json reports attempts as a number', async () => {
    const r = await runCli(['events', 'list', '--json', '--limit', '5', ...db()]);
    const list = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.equal(list.length, 5);
    for (const e of list) {
      assert.equal(typeof e.id, 'string');
      assert.equal(typeof e.type, 'string');
      assert.equal(typeof e.status, 'string');
      assert.equal(typeof e.attempts, 'number');
      assert.ok(!Number.isNaN(Date.parse(String(e.receivedAt))));
    }
    const sorted = [...list].sort((a, b) => String(b.receivedAt).localeCompare(String(a.receivedAt)));
    assert.deepEqual(list, sorted, 'newest first');
    const badStatus = await runCli(['events', 'list', '--status', 'done', ...db()]);
    assert.equal(badStatus.code, 2);
    assert.match(badStatus.stderr, /"done" is not a status; use one of pending, processing/);
  });

  it('events list filters by status and type: every row matches, and no matching event is left out', async () => {
    // Three groups this test owns: processed order.created, dead order.confirmed (it fails its 2
    // attempts under RETRY_SCHEDULE=100ms), and unhandled user.registered (no handler).
    const sendIds = async (type: string, count: number) => {
      const r = await runCli([
        'send',
        type,
        '--count',
        String(count),
        '--url',
        server.url,
        '--secret',
        SECRET,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const ids = [...r.stdout.matchAll(/evt_\w+/g)].map((m) => m[0]);
      assert.equal(ids.length, count, r.stdout);
      return ids;
    };
    const created = await sendIds('order.created', 3);
    const confirmed = await sendIds('order.confirmed', 2);
    const registered = await sendIds('user.registered', 2);
    const expected = new Map<string, string>([
      ...created.map((id) => [id, 'processed'] as const),
      ...confirmed.map((id) => [id, 'dead'] as const),
      ...registered.map((id) => [id, 'unhandled'] as const),
    ]);
    type Row = { id: string; type: string; status: string };
    const list = async (...filter: string[]): Promise<Row[]> => {
      const r = await runCli(['events', 'list', ...filter, '--limit', '100000', '--json', ...db()]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Row[];
    };
    // Wait on the unfiltered list, so the wait does not depend on the filters under test.
    await waitFor(
      async () => (await list()).filter((e) => expected.get(e.id) === e.status).length === expected.size,
      { what: 'processed, dead and unhandled final states of the 7 events sent' },
    );

    const check = (rows: Row[], match: (e: Row) => boolean, present: string[], absent: string[]) => {
      for (const e of rows) assert.ok(match(e), `row does not match the filter: ${JSON.stringify(e)}`);
      const ids = new Set(rows.map((e) => e.id));
      assert.equal(ids.size, rows.length, 'each event listed once');
      for (const id of present) assert.ok(ids.has(id), `${id} (${expected.get(id)}) is missing`);
      for (const id of absent) assert.ok(!ids.has(id), `${id} (${expected.get(id)}) should be filtered out`);
    };
    check(
      await list('--status', 'processed', '--type', 'order.created'),
      (e) => e.status === 'processed' && e.type === 'order.created',
      created,
      [...confirmed, ...registered],
    );
    check(
      await list('--type', 'order.*'),
      (e) => e.type.startsWith('order.'),
      [...created, ...confirmed],
      registered,
    );
    check(
      await list('--status', 'dead', '--type', 'order.*'),
      (e) => e.status === 'dead' && e.type.startsWith('order.'),
      confirmed,
      [...created, ...registered],
    );
    check(await list('--status', 'unhandled'), (e) => e.status === 'unhandled', registered, [
      ...created,
      ...confirmed,
    ]);

    const table = await runCli(['events', 'list', '--type', 'order.*', '--limit', '100000', ...db()]);
    const [header, ...rows] = table.stdout.trim().split('\n');
    assert.match(header ?? '', /^RECEIVED\s+ID\s+TYPE\s+STATUS\s+ATTEMPTS/);
    for (const row of rows) assert.match(row, /^\S+\s+evt_\w+\s+order\.\w+\s/);
    for (const id of [...created, ...confirmed]) assert.ok(table.stdout.includes(id), `${id} in the table`);
    for (const id of registered) assert.ok(!table.stdout.includes(id), `${id} not in the table`);
  });

  it('events replay ID runs a processed event again: a new attempt, not a new event', async () => {
    const sent = await runCli(['send', 'order.created', '--url', server.url, '--secret', SECRET]);
    const id = /evt_\w+/.exec(sent.stdout)?.[0];
    assert.ok(id, sent.stdout);
    type Shown = { status: string; attempts: number; attemptHistory: { number: number; outcome: string }[] };
    const show = async () => {
      const r = await runCli(['events', 'show', id, '--json', ...db()]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Shown;
    };
    await waitFor(
      async () => {
        const e = await show();
        return e.status === 'processed' && e.attempts === 1;
      },
      { what: `${id} processed after 1 attempt` },
    );
    const count = async () =>
      (
        JSON.parse(
          (await runCli(['events', 'list', '--json', '--limit', '100000', ...db()])).stdout,
        ) as unknown[]
      ).length;
    const before = await count();

    const replay = await runCli(['events', 'replay', id, '--retry-schedule', '100ms', ...db()]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal(replay.stdout, `replayed ${id}: due now, 2 attempt(s) allowed\n`);
    const after = await waitFor(
      async () => {
        const e = await show();
        return e.status === 'processed' && e.attempts === 2 ? e : undefined;
      },
      { what: `${id} processed again, by attempt 2` },
    );
    assert.deepEqual(
      after.attemptHistory.map((a) => [a.number, a.outcome]),
      [
        [1, 'succeeded'],
        [2, 'succeeded'],
      ],
    );
    const runs = readFileSync(join(tmp.dir, 'runs.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith(`run ${id} `));
    assert.deepEqual(runs, [`run ${id} 1`, `run ${id} 2`], 'the handler ran once more');
    assert.equal(await count(), before, 'no new event');
  });

  it('dead letters: list, show with attempt history, replay, discard', async () => {
    const sent = await runCli([
      'send',
      'payment.failed',
      '--count',
      '2',
      '--url',
      server.url,
      '--secret',
      SECRET,
    ]);
    const ids = [...sent.stdout.matchAll(/evt_\w+/g)].map((m) => m[0]);
    assert.equal(ids.length, 2);
    const dead = await waitFor(async () => {
      const r = await runCli(['dead-letter', 'list', '--json', ...db()]);
      const list = (JSON.parse(r.stdout) as { id: string; attempts: number }[]).filter((e) =>
        ids.includes(e.id),
      );
      return list.length === 2 ? list : undefined;
    });
    assert.ok(dead.every((e) => e.attempts === 2));
    const [first, second] = dead as [{ id: string }, { id: string }, ...unknown[]];

    const show = await runCli(['events', 'show', first.id, ...db()]);
    assert.match(show.stdout, /status: {6}dead/);
    assert.match(show.stdout, /#1 .* failed/);
    assert.match(show.stdout, /the payments API is down/);
    assert.match(show.stdout, /"type": "payment.failed"/);
    const showJson = JSON.parse((await runCli(['events', 'show', first.id, '--json', ...db()])).stdout) as {
      attemptHistory: { consumer: string }[];
    };
    // The handlers' two (a dead handler's event also gets a projections job of its own).
    assert.equal(showJson.attemptHistory.filter((a) => a.consumer === 'handlers').length, 2);

    const replay = await runCli(['dead-letter', 'replay', first.id, '--retry-schedule', '100ms', ...db()]);
    assert.equal(replay.code, 0, replay.stderr);
    await waitFor(
      async () => {
        const e = JSON.parse((await runCli(['events', 'show', first.id, '--json', ...db()])).stdout) as {
          status: string;
          attempts: number;
        };
        return e.status === 'dead' && e.attempts === 4;
      },
      { what: 'replayed event to run its 2 new attempts' },
    );

    const discard = await runCli(['dead-letter', 'discard', second.id, ...db()]);
    assert.match(discard.stdout, /discarded 1 of 1/);
    const after = JSON.parse((await runCli(['dead-letter', 'list', '--json', ...db()])).stdout) as {
      id: string;
    }[];
    assert.ok(after.some((e) => e.id === first.id));
    assert.ok(!after.some((e) => e.id === second.id));
    const notReplayable = await runCli(['events', 'replay', 'evt_nope', ...db()]);
    assert.equal(notReplayable.code, 1);
    assert.match(notReplayable.stderr, /no event with id evt_nope/);
  });

  it('schema prints the catalogue as JSON Schema', async () => {
    const r = await runCli(['schema']);
    const schema = JSON.parse(r.stdout) as { oneOf: { title: string }[] };
    assert.equal(schema.oneOf.length, 22);
  });

  it('events list on a database that does not exist says so', async () => {
    const r = await runCli(['events', 'list', '--db', `sqlite:${join(tmp.dir, 'missing.db')}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no inbox database at .*missing\.db; start the service first/);
    assert.equal(existsSync(join(tmp.dir, 'missing.db')), false);
  });
});

describe('quick start: serve --dev, the printed send command, events list', () => {
  it('works as a new user would run it', async () => {
    const tmp = tempDir();
    const port = await freePort();
    const dev = startCli(['serve', '--dev'], {
      cwd: tmp.dir,
      env: { PORT: String(port), WEBHOOK_SECRET: '' },
    });
    try {
      const command = await waitFor(() => /npx procureiq-webhooks (send .*)/.exec(dev.stderr())?.[1], {
        what: 'the printed send command',
      });
      const secret = readFileSync(join(tmp.dir, 'data', 'dev-secret'), 'utf8').trim();
      assert.ok(command.includes(secret));
      const sent = await runCli(command.split(' '), { cwd: tmp.dir });
      assert.equal(sent.code, 0, sent.stderr);
      assert.match(sent.stdout, /200 ok\s+order\.created/);
      const listed = await runCli(['events', 'list'], { cwd: tmp.dir });
      assert.match(listed.stdout, /order\.created\s+unhandled/);
      // A restart reuses the secret.
      await stopProcess(dev);
      const again = startCli(['serve', '--dev'], {
        cwd: tmp.dir,
        env: { PORT: String(port), WEBHOOK_SECRET: '' },
      });
      await waitFor(() => again.stderr().includes(secret), { what: 'the same secret' });
      assert.ok(!again.stderr().includes('generated now'));
      await stopProcess(again);
    } finally {
      await stopProcess(dev);
      tmp.cleanup();
    }
  });
});
