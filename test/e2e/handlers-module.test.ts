// serve --handlers with a module whose default export is a function that receives the consumer
// and registers handlers itself (README: "The default export may instead be a function…").
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { type CliProcess, postSigned, REPO, startServer, stopProcess, tempDir } from '../helpers/index.ts';
import { ADMIN_TOKEN, adminEvent, settledEvent } from './admin-client.ts';

const FIXTURES = join(REPO, 'test', 'fixtures', 'handlers');

describe('serve --handlers: a default export that is a function', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: (CliProcess & { url: string; port: number }) | undefined;
  let log: string;

  beforeEach(() => {
    tmp = tempDir();
    log = join(tmp.dir, 'runs.log');
  });
  afterEach(async () => {
    if (server) assert.equal(await stopProcess(server), 0, server.stderr());
    server = undefined;
    tmp.cleanup();
  });

  it('.ts: what the function registers runs; a type it did not register is stored unhandled', async () => {
    server = await startServer(tmp.dir, {
      HANDLERS: join(FIXTURES, 'register-handlers.ts'),
      E2E_LOG: log,
      ADMIN_TOKEN,
    });
    const shipped = { ...examplePayloads['order.shipped'], id: 'evt_fn_shipped' };
    const created = { ...examplePayloads['order.created'], id: 'evt_fn_created' };
    assert.equal((await postSigned(server.url, shipped)).status, 200);
    assert.equal((await postSigned(server.url, created)).status, 200);

    const done = await settledEvent(server.port, shipped.id);
    assert.equal(done.status, 'processed');
    assert.equal(done.attempts, 1);
    assert.equal((await adminEvent(server.port, created.id))?.status, 'unhandled');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
      `run ${shipped.id} 1 ${shipped.data.trackingNumber}`,
      `done ${shipped.id} 1`,
    ]);
  });

  it('.js: loads without a build step; the function may register a handler for every type', async () => {
    server = await startServer(tmp.dir, {
      HANDLERS: join(FIXTURES, 'register-handlers.js'),
      E2E_LOG: log,
      ADMIN_TOKEN,
    });
    const ids = ['evt_fn_js_1', 'evt_fn_js_2'];
    assert.equal(
      (await postSigned(server.url, { ...examplePayloads['order.created'], id: ids[0] })).status,
      200,
    );
    assert.equal(
      (await postSigned(server.url, { ...examplePayloads['user.registered'], id: ids[1] })).status,
      200,
    );
    for (const id of ids) assert.equal((await settledEvent(server.port, id)).status, 'processed', id);
    assert.deepEqual(
      readFileSync(log, 'utf8').trim().split('\n').sort(),
      ids.map((id) => `any ${id} 1`),
    );
  });
});
