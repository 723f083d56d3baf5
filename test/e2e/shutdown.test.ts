// README, Shutdown: "On SIGTERM or SIGINT the service answers new deliveries with 503 (ProcureIQ
// retries them), lets running handlers finish within SHUTDOWN_GRACE…, closes the store, and exits 0."
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { sign } from '../../src/signature/sign.ts';
import {
  postSigned,
  REPO,
  runCli,
  SECRET,
  startServer,
  stopProcess,
  tempDir,
  waitFor,
} from '../helpers/index.ts';

describe('shutdown', () => {
  it('while a handler drains after SIGTERM, a new delivery gets 503 and is not stored', async () => {
    const tmp = tempDir();
    const log = join(tmp.dir, 'runs.log');
    const gate = join(tmp.dir, 'gate');
    const db = ['--db', `sqlite:${join(tmp.dir, 'inbox.db')}`];
    const server = await startServer(tmp.dir, {
      HANDLERS: join(REPO, 'test', 'fixtures', 'handlers', 'register-handlers.ts'),
      E2E_LOG: log,
      E2E_GATE: gate,
      // Long enough that only the gate, never the grace period, ends the in-flight handler.
      SHUTDOWN_GRACE: '5m',
    });
    try {
      // A handler in flight: it waits for the gate file.
      const inFlight = { ...examplePayloads['order.shipped'], id: 'evt_draining' };
      assert.equal((await postSigned(server.url, inFlight)).status, 200);
      // The log appears with the handler's first line: until then there is nothing to read.
      await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes(`run ${inFlight.id} 1`), {
        what: 'the in-flight handler to start',
      });

      // A delivery on a connection the server has already taken: `Expect: 100-continue` makes the
      // server say it has read the headers, so the request is live (not an idle socket that
      // shutdown closes) before SIGTERM. Its body follows once shutdown has begun.
      const late = JSON.stringify({ ...examplePayloads['order.created'], id: 'evt_during_shutdown' });
      const req = request({
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: '/webhooks/procureiq',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(late),
          'x-procureiq-signature': sign(SECRET, late),
          'x-procureiq-delivery': crypto.randomUUID(),
          'x-procureiq-timestamp': String(Math.floor(Date.now() / 1000)),
          expect: '100-continue',
        },
      });
      const response = once(req, 'response') as Promise<[IncomingMessage]>;
      req.flushHeaders();
      await once(req, 'continue');

      server.child.kill('SIGTERM');
      await waitFor(() => server.stdout().includes('shutting down: refusing new deliveries'), {
        what: 'the shutdown log line',
      });
      req.end(late);
      const [res] = await response;
      let text = '';
      for await (const chunk of res) text += String(chunk);
      assert.equal(res.statusCode, 503, text);
      assert.equal(res.headers['retry-after'], '5');
      assert.deepEqual(JSON.parse(text), {
        error: { code: 'shutting_down', message: 'the service is shutting down; retry later' },
      });
      assert.equal(server.child.exitCode, null, 'still draining the in-flight handler');

      // Let the handler finish: the process then exits 0 on its own.
      writeFileSync(gate, '');
      assert.equal(await server.exited, 0, server.stderr());
      assert.match(readFileSync(log, 'utf8'), new RegExp(`done ${inFlight.id} 1`));

      const refused = await runCli(['events', 'show', 'evt_during_shutdown', ...db]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /no event with id evt_during_shutdown/);
      const drained = JSON.parse((await runCli(['events', 'show', inFlight.id, '--json', ...db])).stdout) as {
        status: string;
        attempts: number;
      };
      assert.deepEqual([drained.status, drained.attempts], ['processed', 1]);
    } finally {
      writeFileSync(gate, '');
      await stopProcess(server, 'SIGKILL');
      tmp.cleanup();
    }
  });
});
