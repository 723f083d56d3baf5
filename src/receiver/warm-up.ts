import { randomBytes } from 'node:crypto';
import { Agent, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { examplePayloads } from '../events/examples.ts';
import { SIGNATURE_HEADER, sign } from '../signature/sign.ts';
import { toError } from '../util/errors.ts';
import { listenServer } from './node-server.ts';

export interface WarmUpOptions {
  /**
   * The real webhook server, not yet listening. It listens on a local socket for the warm-up, then
   * is closed, ready to listen on its port.
   */
  server: Server;
  /** Its webhook route. */
  path: string;
  /** A secret its receiver verifies. */
  secret: string;
  /** Deliveries to send. */
  deliveries: number;
  /** Their event ids start with this (the caller keeps them apart by it). */
  idPrefix: string;
  /** Requests in flight at once. @defaultValue 16 */
  concurrency?: number;
  /** Past this, the warm-up stops where it is and fails (the caller starts cold). @defaultValue 30 s */
  deadlineMs?: number;
}

/**
 * Sends `deliveries` signed deliveries of every catalogued type through the real server and
 * receiver, over a local socket, before the server listens on its port; the caller makes each a
 * rehearsal that the store runs and keeps nothing of, and counts nothing. V8 runs a function interpreted until it is hot,
 * so a service started under load used to answer its first second or so slowly (p99 300 ms at
 * 5,000/s on one CPU) while its request path was still being compiled.
 *
 * The real server and receiver, not copies made like them: through copies, a cold start at 5,000/s
 * on one CPU still had a p99.9 of 97-156 ms; through the real ones, 77-86 ms. Answers how many
 * deliveries got each status: all 200, or the warm-up ran some other path than real deliveries take.
 *
 * Through the store too: when the warm-up's deliveries were answered without it, the service then
 * promoted 3-4 times more to V8's old generation per scavenge at 5,000/s than one started cold
 * (0.6 MB against 0.17), and ran a full GC every 1.5-2.5 s (a p99 of 20-25 ms in those seconds on
 * one CPU). As rehearsals on the writer it promotes what a cold one does, with one full GC in 10 s.
 * (Answering them a turn later made no difference: what counts is running the store's own code.)
 */
export async function warmUp(options: WarmUpOptions): Promise<Record<number, number>> {
  const { server, path, secret } = options;
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
  await listenServer(server, socketPath);
  const concurrency = options.concurrency ?? 16;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const payloads = Object.values(examplePayloads);
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
          // 'close', not 'end': a response cut off after its headers never ends.
          res.on('close', resolve);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // A failure or the deadline stops every loop before the server closes, so no request of the
  // warm-up is still on its way in once the caller turns the warm-up off.
  let stop: Error | undefined;
  const deadlineMs = options.deadlineMs ?? 30_000;
  const deadline = setTimeout(() => {
    stop ??= new Error(`the warm-up took longer than ${deadlineMs} ms`);
  }, deadlineMs);
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (stop === undefined && next < options.deliveries) {
          const i = next++;
          const payload = payloads[i % payloads.length] as (typeof payloads)[number];
          const body = Buffer.from(JSON.stringify({ ...payload, id: `${options.idPrefix}${i}` }));
          await post(body, i % 8 === 0).catch((error: unknown) => {
            stop ??= toError(error);
          });
        }
      }),
    );
    if (stop) throw stop;
    return answered;
  } finally {
    clearTimeout(deadline);
    agent.destroy();
    // Closed, the server may listen again (on its port); its connection checks restart with it.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}
