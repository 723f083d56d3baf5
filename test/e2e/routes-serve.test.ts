// `serve --routes FILE` as an operator runs it: a file with a mistake stops start-up (exit 1) with
// each problem named by its path; SIGHUP reloads the file without a restart (a valid one applies to
// events stored afterwards, an invalid one is refused and the running routes stay), and jobs of a
// route taken out of the file wait, orphaned, until it comes back.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import {
  freePort,
  postSigned,
  runCli,
  startServer,
  stopProcess,
  tempDir,
  waitFor,
} from '../helpers/index.ts';

/** A local HTTP sink recording the idempotency key of every request, by path. */
async function startSink() {
  const received: { path: string; id: string }[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push({ path: req.url ?? '/', id: String(req.headers['idempotency-key']) });
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    at: (path: string) => received.filter((r) => r.path === path).map((r) => r.id),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function routesYaml(sinkUrl: string, downUrl: string, routes: string[]): string {
  return [
    'destinations:',
    '  fulfilment:',
    '    type: http',
    `    url: ${sinkUrl}/fulfilment`,
    '  audit:',
    '    type: http',
    `    url: ${sinkUrl}/audit`,
    '  down:',
    '    type: http',
    `    url: ${downUrl}`,
    '    timeout: 2s',
    'routes:',
    ...routes,
  ].join('\n');
}

const SHIP = ['  - name: ship', '    match: { types: [order.*] }', '    to: fulfilment'];
const SHIP_DOWN = ['  - name: ship', '    match: { types: [order.*] }', '    to: down'];
const AUDIT = ['  - name: audit', '    match: { types: ["*"] }', '    to: audit'];

const ADMIN_TOKEN = 'routes-serve-admin-token-0123456789';

describe('serve --routes', () => {
  const tmp = tempDir();
  const file = join(tmp.dir, 'routes.yaml');
  let sink: Awaited<ReturnType<typeof startSink>>;
  let down: string;

  before(async () => {
    sink = await startSink();
    // A port nothing listens on: every send to it fails at once.
    down = `http://127.0.0.1:${await freePort()}/hooks`;
  });
  after(async () => {
    await sink.close();
    tmp.cleanup();
  });

  it('refuses a file with mistakes at start-up: exit 1, every problem by its path', async () => {
    writeFileSync(
      file,
      routesYaml(sink.url, down, [
        ...SHIP,
        '  - name: payments',
        '    match: { types: [payment.*] }',
        '    to: fulfilmnet',
        '    rateLimit: fast',
      ]),
    );
    const r = await runCli(['serve', '--routes', file], {
      cwd: tmp.dir,
      env: {
        WEBHOOK_SECRET: 'x'.repeat(24),
        DATABASE_URL: `sqlite:${join(tmp.dir, 'refused.db')}`,
        PORT: '0',
      },
    });
    assert.equal(r.code, 1, r.stderr);
    const out = r.stderr + r.stdout;
    assert.match(out, /routes\[1\]\.to: no destination "fulfilmnet" \(did you mean "fulfilment"\?\)/);
    assert.match(out, /routes\[1\]\.rateLimit: /);
  });

  it('SIGHUP: a valid file applies to events stored afterwards, an invalid one is refused, orphaned jobs resume', async () => {
    writeFileSync(file, routesYaml(sink.url, down, SHIP));
    const server = await startServer(tmp.dir, {
      ROUTES: file,
      POLL_INTERVAL: '100ms',
      // Retries come soon, and enough of them that the failing job outlives the test's reloads.
      RETRY_SCHEDULE: Array.from({ length: 20 }, () => '200ms').join(','),
      ADMIN_TOKEN,
    });
    const db = ['--db', `sqlite:${join(tmp.dir, 'inbox.db')}`];
    /** `routes list --json`, its breakers read from this service's admin API. */
    const listRoutes = async () => {
      const r = await runCli(['routes', 'list', '--routes', file, '--json', ...db], {
        env: { ADMIN_TOKEN, PORT: String(server.port) },
      });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as {
        routes: { name: string; breaker: string }[];
        orphaned: { route: string; counts: Record<string, number> }[];
        breakersFrom: string | null;
      };
    };
    const send = async (id: string, type: keyof typeof examplePayloads = 'order.created') =>
      assert.equal((await postSigned(server.url, { ...examplePayloads[type], id })).status, 200);
    const reloaded = (count: number) =>
      waitFor(() => (server.stdout().match(/routes reloaded/g)?.length ?? 0) >= count || undefined, {
        what: `${count} reload(s) logged`,
      });
    try {
      await send('evt_hup_1');
      await waitFor(() => sink.at('/fulfilment').includes('evt_hup_1') || undefined, {
        what: 'evt_hup_1 shipped',
      });

      // A broken file: refused with the start-up messages; ship keeps running.
      writeFileSync(file, routesYaml(sink.url, down, [...SHIP, '  - name: audit', '    to: nowhere']));
      server.child.kill('SIGHUP');
      await waitFor(() => /routes file refused on reload/.test(server.stdout()) || undefined, {
        what: 'the refusal logged',
      });
      assert.match(server.stdout(), /routes\[1\]\.to: no destination \\?"nowhere\\?"/);
      await send('evt_hup_2');
      await waitFor(() => sink.at('/fulfilment').includes('evt_hup_2') || undefined, {
        what: 'evt_hup_2 shipped',
      });

      // ship now to a destination that is down, and audit added: an order's ship job keeps failing.
      writeFileSync(file, routesYaml(sink.url, down, [...SHIP_DOWN, ...AUDIT]));
      server.child.kill('SIGHUP');
      await reloaded(1);
      await send('evt_hup_3');
      await waitFor(() => sink.at('/audit').includes('evt_hup_3') || undefined, {
        what: 'evt_hup_3 audited',
      });
      assert.ok(!sink.at('/audit').includes('evt_hup_1'), 'events stored earlier are not re-matched');
      // Five failures in a row pause the down destination: routes list shows it, from the service.
      const paused = await waitFor(
        async () => {
          const list = await listRoutes();
          return list.routes.find((r) => r.name === 'ship')?.breaker === 'open' ? list : undefined;
        },
        { what: 'routes list showing ship paused' },
      );
      assert.equal(paused.routes.find((r) => r.name === 'audit')?.breaker, 'closed');
      assert.equal(paused.breakersFrom, `http://127.0.0.1:${server.port}`);
      const offline = await runCli(['routes', 'list', '--routes', file, '--json', ...db], {
        env: { ADMIN_TOKEN: '' },
      });
      assert.deepEqual(
        (JSON.parse(offline.stdout) as { routes: { breaker: string }[] }).routes.map((r) => r.breaker),
        ['n/a', 'n/a'],
        'without the admin token the CLI cannot know',
      );

      // ship taken out: its failing job waits, orphaned, where it is.
      writeFileSync(file, routesYaml(sink.url, down, AUDIT));
      server.child.kill('SIGHUP');
      await reloaded(2);
      const overview = await listRoutes();
      const orphan = overview.orphaned.find((o) => o.route === 'ship');
      assert.ok(orphan, JSON.stringify(overview));
      assert.equal(
        (orphan.counts.retrying ?? 0) + (orphan.counts.pending ?? 0) + (orphan.counts.processing ?? 0),
        1,
      );

      // ship back, to the working destination: the orphaned job resumes and is delivered, once.
      writeFileSync(file, routesYaml(sink.url, down, [...SHIP, ...AUDIT]));
      server.child.kill('SIGHUP');
      await reloaded(3);
      await waitFor(() => sink.at('/fulfilment').includes('evt_hup_3') || undefined, {
        what: 'the orphaned job delivered after its route came back',
      });
      assert.equal(sink.at('/fulfilment').filter((id) => id === 'evt_hup_1').length, 1, 'sent once');
    } finally {
      await stopProcess(server);
    }
  });
});
