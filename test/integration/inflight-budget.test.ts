// Unsigned uploads cannot pin memory: the in-flight body budget (503 + Retry-After, connection
// closed), its per-source share, the body-read timeout (408), max connections, and the budget
// given back on every way a request ends. Real sockets against 127.0.0.1 only; attackers connect
// from other loopback addresses (127.0.0.2…), as they would from addresses other than ProcureIQ's.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import { createBodyBudget } from '../../src/receiver/body-budget.ts';
import { createNodeServer, type NodeServerOptions } from '../../src/receiver/node-server.ts';
import { createReceiver } from '../../src/receiver/receiver.ts';
import { buildDelivery, freshEvent } from '../../src/simulator/deliveries.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { SECRET, tempDir, waitFor } from '../helpers/index.ts';

const MiB = 1024 * 1024;

/** A raw request that sends `send` bytes of a `declared`-byte body (chunked when undefined) and holds. */
interface Held {
  socket: Socket;
  /** What the server answered so far. */
  answer: () => string;
  closed: () => boolean;
}

function hold(
  port: number,
  from: string,
  declared: number | undefined,
  send: Buffer,
  extraHeaders = '',
): Held {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  let answer = '';
  let closed = false;
  socket.on('error', () => {}); // a reset after the server's refusal is expected
  socket.on('data', (d: Buffer) => {
    answer += d.toString('latin1');
  });
  socket.on('close', () => {
    closed = true;
  });
  socket.on('connect', () => {
    const length = declared === undefined ? 'Transfer-Encoding: chunked' : `Content-Length: ${declared}`;
    socket.write(
      `POST /webhooks/procureiq HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${length}\r\n${extraHeaders}\r\n`,
    );
    if (declared === undefined) socket.write(`${send.length.toString(16)}\r\n`);
    socket.write(send);
    if (declared === undefined) socket.write('\r\n');
  });
  return { socket, answer: () => answer, closed: () => closed };
}

async function startServer(
  store: SqliteStore,
  extra: Partial<NodeServerOptions>,
): Promise<{ server: Server; port: number; stop: () => Promise<void> }> {
  const receiver = createReceiver({ secrets: [SECRET], store, logger: silentLogger() });
  const server = createNodeServer({
    routes: { '/webhooks/procureiq': receiver },
    logger: silentLogger(),
    ...extra,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function postSignedTo(port: number): Promise<{ status: number; ms: number }> {
  const delivery = buildDelivery(freshEvent('order.created'), SECRET);
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/procureiq`, {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body,
    signal: AbortSignal.timeout(5_000),
  });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - started };
}

describe('in-flight body budget', () => {
  const tmp = tempDir();
  const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
  const open: Held[] = [];

  before(async () => {
    await store.migrate();
  });
  after(async () => {
    for (const h of open) h.socket.destroy();
    await store.close();
    tmp.cleanup();
  });

  it('200 sockets holding 1 MiB - 1 byte each: refused past the budget, signed deliveries still get 200 within 1 s, budget back to 0', async () => {
    const budget = createBodyBudget(64 * MiB);
    const { port, stop } = await startServer(store, { bodyBudget: budget });
    const payload = Buffer.alloc(MiB - 1, 0x20);
    const attack: Held[] = [];
    try {
      for (let i = 0; i < 200; i++) attack.push(hold(port, '127.0.0.2', MiB, payload));
      open.push(...attack);
      // Every attacking request is either refused or holds exactly its declared MiB.
      const refused = () => attack.filter((h) => h.answer().startsWith('HTTP/1.1 503')).length;
      await waitFor(() => refused() + budget.used / MiB === 200, { what: 'every attacking request settled' });
      assert.ok(budget.used <= budget.limit / 4, `one address holds at most its share (${budget.used})`);
      for (const h of attack.filter((a) => a.answer() !== '')) {
        assert.match(h.answer(), /^HTTP\/1\.1 503/);
        assert.match(h.answer(), /\r\nretry-after: \d+\r\n/i);
        assert.match(h.answer(), /\r\nconnection: close\r\n/i);
      }

      for (let i = 0; i < 3; i++) {
        const { status, ms } = await postSignedTo(port);
        assert.equal(status, 200);
        assert.ok(ms < 1_000, `signed delivery answered in ${Math.round(ms)} ms during the attack`);
      }

      for (const h of attack) h.socket.destroy();
      await waitFor(() => budget.used === 0, { what: 'the budget back to 0 after the sockets closed' });
    } finally {
      for (const h of attack) h.socket.destroy();
      await stop();
    }
  });

  it('a request that would pass the budget gets 503 with Retry-After and its connection closed', async () => {
    const budget = createBodyBudget(64 * 1024);
    const { port, stop } = await startServer(store, { bodyBudget: budget });
    const held: Held[] = [];
    try {
      // Four addresses each hold 15 KiB of a declared 15 KiB + 1 (under their 16 KiB share): 60 KiB.
      for (let i = 2; i <= 5; i++)
        held.push(hold(port, `127.0.0.${i}`, 15 * 1024 + 1, Buffer.alloc(15 * 1024, 0x20)));
      open.push(...held);
      await waitFor(() => budget.used === 4 * (15 * 1024 + 1), { what: '60 KiB held' });

      // A fifth address with 8 KiB passes the whole budget.
      const over = hold(port, '127.0.0.6', 8 * 1024, Buffer.alloc(8 * 1024, 0x20));
      // The first address with 2 KiB more passes its share.
      const share = hold(port, '127.0.0.2', 2 * 1024, Buffer.alloc(2 * 1024, 0x20));
      // A chunked body (no declared length) is refused as its bytes arrive.
      const chunked = hold(port, '127.0.0.7', undefined, Buffer.alloc(8 * 1024, 0x20));
      open.push(over, share, chunked);
      for (const h of [over, share, chunked]) {
        await waitFor(() => h.closed(), { what: 'the refused connection closed' });
        assert.match(h.answer(), /^HTTP\/1\.1 503/);
        assert.match(h.answer(), /\r\nretry-after: 5\r\n/i);
        assert.match(h.answer(), /\r\nconnection: close\r\n/i);
        assert.match(h.answer(), /"code":"server_busy"/);
      }
      assert.match(share.answer(), /from this address/);
      assert.equal(budget.used, 4 * (15 * 1024 + 1), 'refused requests hold nothing');

      // Once a holder finishes its body, its bytes are given back and a new request fits.
      held[0]?.socket.write(' ');
      await waitFor(() => held[0]?.answer().startsWith('HTTP/1.1 401'), {
        what: 'the finished body answered',
      });
      await waitFor(() => budget.used === 3 * (15 * 1024 + 1), { what: 'its bytes given back' });
      const { status } = await postSignedTo(port);
      assert.equal(status, 200);

      for (const h of held) h.socket.destroy();
      await waitFor(() => budget.used === 0, { what: 'the budget back to 0' });
    } finally {
      for (const h of held) h.socket.destroy();
      await stop();
    }
  });

  it('gives the budget back after 413, a body timeout (408) and a client that goes away', async () => {
    const budget = createBodyBudget(MiB);
    const { port, stop } = await startServer(store, { bodyBudget: budget, bodyTimeoutMs: 300 });
    try {
      // 413: a chunked body passing the 1 MiB body limit, after it was held chunk by chunk.
      const big = createBodyBudget(8 * MiB);
      const large = await startServer(store, { bodyBudget: big });
      try {
        const tooLarge = hold(large.port, '127.0.0.2', undefined, Buffer.alloc(MiB + 10, 0x20));
        open.push(tooLarge);
        await waitFor(() => tooLarge.answer().startsWith('HTTP/1.1 413'), { what: '413' });
        await waitFor(() => big.used === 0, { what: 'the budget back to 0 after 413' });
      } finally {
        await large.stop();
      }

      // 408: half a body, then nothing.
      const slow = hold(port, '127.0.0.2', 1000, Buffer.alloc(500, 0x20));
      open.push(slow);
      await waitFor(() => budget.used === 1000, { what: 'the slow body held' });
      await waitFor(() => slow.closed(), { what: 'the slow client cut' });
      assert.match(slow.answer(), /^HTTP\/1\.1 408/);
      assert.match(slow.answer(), /"code":"body_timeout"/);
      assert.equal(budget.used, 0);

      // The client goes away mid-body.
      const gone = hold(port, '127.0.0.2', 1000, Buffer.alloc(500, 0x20));
      open.push(gone);
      await waitFor(() => budget.used === 1000, { what: 'the body held' });
      gone.socket.destroy();
      await waitFor(() => budget.used === 0, { what: 'the budget back to 0 after the client left' });

      // A complete delivery.
      assert.equal((await postSignedTo(port)).status, 200);
      assert.equal(budget.used, 0);
    } finally {
      await stop();
    }
  });
});

describe('max connections', () => {
  const tmp = tempDir();
  const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
  after(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('closes connections past maxConnections as they arrive', async () => {
    const { server, port, stop } = await startServer(store, { maxConnections: 2 });
    const sockets: Socket[] = [];
    try {
      const opened = (s: Socket) => new Promise<void>((resolve) => s.once('connect', () => resolve()));
      for (let i = 0; i < 2; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        sockets.push(s);
        await opened(s);
      }
      await waitFor(
        () => new Promise<boolean>((resolve) => server.getConnections((_e, n) => resolve(n === 2))),
        { what: 'two connections counted' },
      );
      const third = connect(port, '127.0.0.1');
      third.on('error', () => {});
      sockets.push(third);
      let thirdClosed = false;
      third.once('close', () => {
        thirdClosed = true;
      });
      await waitFor(() => thirdClosed, {
        timeoutMs: 5_000,
        what: 'the third connection closed by the server',
      });
      assert.equal(sockets[0]?.destroyed, false, 'the first two stay open');
    } finally {
      for (const s of sockets) s.destroy();
      await stop();
    }
  });
});
