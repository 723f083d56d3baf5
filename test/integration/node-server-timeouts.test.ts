import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import { createNodeServer } from '../../src/receiver/node-server.ts';
import { createReceiver } from '../../src/receiver/receiver.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { SECRET, tempDir } from '../helpers/index.ts';

// Short deadlines keep the test fast; the checking interval is the server's default, which is
// what this test guards (Node's own 30s default let slow clients hold sockets for 30s past them).
const HEADERS_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 3_000;
const CHECKING_INTERVAL_MS = 1_000;
const MARGIN_MS = 1_000;

/**
 * Opens a raw socket, writes `head`, then one `drip` every 200 ms until the server closes the
 * socket. Resolves with the milliseconds from connect to close and what the server answered.
 */
function trickle(port: number, head: string, drip: string): Promise<{ ms: number; answer: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (!socket.destroyed && socket.writable) socket.write(drip);
      }, 200);
    });
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    socket.on('error', () => {}); // a reset after the server's 408 is the cut itself
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ ms: performance.now() - started, answer });
    });
    // A guard so a missing cut fails the test instead of hanging it; far past the bound.
    setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      reject(new Error('the server never cut the slow client'));
    }, 20_000).unref();
  });
}

describe('standalone server cuts slow clients', () => {
  const tmp = tempDir();
  const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
  let server: Server;
  let port: number;

  before(async () => {
    const receiver = createReceiver({ secrets: [SECRET], store, logger: silentLogger() });
    server = createNodeServer({
      routes: { '/webhooks/procureiq': receiver },
      logger: silentLogger(),
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    tmp.cleanup();
  });

  it('cuts a client trickling its headers within headersTimeout + checking interval', async () => {
    const { ms, answer } = await trickle(
      port,
      'POST /webhooks/procureiq HTTP/1.1\r\nHost: x\r\n',
      'X-Slow: 1\r\n',
    );
    assert.ok(ms >= HEADERS_TIMEOUT_MS - 100, `cut by the deadline, not before (${Math.round(ms)} ms)`);
    assert.ok(
      ms <= HEADERS_TIMEOUT_MS + CHECKING_INTERVAL_MS + MARGIN_MS,
      `cut after ${Math.round(ms)} ms, bound ${HEADERS_TIMEOUT_MS + CHECKING_INTERVAL_MS + MARGIN_MS} ms`,
    );
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  it('cuts a client trickling its body within requestTimeout + checking interval', async () => {
    const head =
      'POST /webhooks/procureiq HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{';
    const { ms, answer } = await trickle(port, head, ' ');
    assert.ok(ms >= REQUEST_TIMEOUT_MS - 100, `cut by the deadline, not before (${Math.round(ms)} ms)`);
    assert.ok(
      ms <= REQUEST_TIMEOUT_MS + CHECKING_INTERVAL_MS + MARGIN_MS,
      `cut after ${Math.round(ms)} ms, bound ${REQUEST_TIMEOUT_MS + CHECKING_INTERVAL_MS + MARGIN_MS} ms`,
    );
    assert.match(answer, /^HTTP\/1\.1 408/);
  });
});
