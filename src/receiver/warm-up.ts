import { randomBytes } from 'node:crypto';
import { Agent, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { examplePayloads } from '../events/examples.ts';
import { SIGNATURE_HEADER, sign } from '../signature/sign.ts';
import type { InsertResult } from '../store/inbox-store.ts';
import type { Receiver, ReceiverStore } from './receiver.ts';

export interface WarmUpOptions {
  /** A receiver like the real one, over `store` and with `secret`. */
  receiver: (store: ReceiverStore, secret: string) => Receiver;
  /** A server like the real one, serving `receiver` at `path`. */
  server: (path: string, receiver: Receiver) => Server;
  /** Deliveries to send. */
  deliveries: number;
  /** Whether the real store projects at insert (the receiver then builds projection statements). */
  projectsAtInsert: boolean;
  /** Requests in flight at once. @defaultValue 16 */
  concurrency?: number;
}

/**
 * Sends `deliveries` signed deliveries of every catalogued type, over loopback HTTP, to a server
 * and receiver made like the real ones but over a store that keeps nothing, then closes it. It runs
 * before the real server listens: V8 runs a function interpreted until it is hot, so a service
 * started under load used to answer its first second or so slowly (p99 300 ms at 5,000/s on one
 * CPU) while the request path (node:http, body reading, verification, parsing, schema checks, route
 * matching, projection statements) was still being compiled. Nothing is stored, counted or logged.
 * Answers how many deliveries got each status: all 200, or the warm-up ran some other path.
 */
export async function warmUp(options: WarmUpOptions): Promise<Record<number, number>> {
  const secret = randomBytes(16).toString('hex');
  const inserted: InsertResult = { outcome: 'inserted', claimed: null };
  const store: ReceiverStore = {
    projectsAtInsert: options.projectsAtInsert,
    insertIfAbsent: async () => inserted,
  };
  const path = `/warm-up-${randomBytes(4).toString('hex')}`;
  const server = options.server(path, options.receiver(store, secret));
  // A local socket rather than a TCP port: no port of the machine's is taken, even for a moment.
  // On Linux it is an abstract one, so not even a file is left behind by a process killed meanwhile.
  // Short: a socket path has room for about 100 bytes, and macOS's tmpdir takes half of that.
  const name = `piq-warm-up-${process.pid}-${randomBytes(6).toString('hex')}`;
  const socketPath =
    process.platform === 'linux'
      ? `\0${name}`
      : process.platform === 'win32'
        ? `\\\\?\\pipe\\${name}`
        : join(tmpdir(), `${name}.sock`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  const concurrency = options.concurrency ?? 16;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const payloads = Object.values(examplePayloads);
  const run = randomBytes(4).toString('hex');
  let next = 0;
  const answered: Record<number, number> = {};
  // One delivery in eight comes on a connection of its own: a start under load also opens many
  // connections at once, and accepting one runs code of its own (socket and parser set-up).
  const post = (body: Buffer, ownConnection: boolean) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        {
          socketPath,
          path,
          method: 'POST',
          agent: ownConnection ? false : agent,
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: sign(secret, body),
            ...(ownConnection ? { connection: 'close' } : {}),
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          answered[status] = (answered[status] ?? 0) + 1;
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < options.deliveries) {
          const i = next++;
          const payload = payloads[i % payloads.length] as (typeof payloads)[number];
          await post(Buffer.from(JSON.stringify({ ...payload, id: `evt_warmup_${run}_${i}` })), i % 8 === 0);
        }
      }),
    );
    return answered;
  } finally {
    agent.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
