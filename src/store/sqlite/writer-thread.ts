// The SQLite writer thread. better-sqlite3 is synchronous and every commit fsyncs, so commits run
// here rather than on the event loop: the HTTP thread keeps parsing and verifying requests while
// this thread waits on the disk, and everything that queued up meanwhile shares the next commit.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { BatchReply, BatchRequest, CommitReply } from './protocol.ts';
import { commitFailpoint, createWireDecoder, runBatch } from './protocol.ts';
import { SqliteConnection } from './sqlite-connection.ts';

const port = parentPort;
if (!port) throw new Error('writer-thread.ts must run as a worker thread');

const failpoint = commitFailpoint(process.env);
const fromWire = createWireDecoder();
let inbox: SqliteConnection;
try {
  inbox = new SqliteConnection((workerData as { path: string }).path);
  inbox.growWal();
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ initError: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}

port.on('message', (first: BatchRequest | { close: true }) => {
  // Everything the main thread sent while the last commit was on disk is already queued here:
  // take it all now and commit it as one transaction, one fsync.
  const requests: BatchRequest[] = [];
  let close = false;
  for (let message: BatchRequest | { close: true } | undefined = first; message; ) {
    if ('close' in message) {
      close = true;
      break;
    }
    requests.push(message);
    message = receiveMessageOnPort(port)?.message as BatchRequest | { close: true } | undefined;
  }
  if (requests.length > 0) {
    const ops = fromWire(requests.flatMap((r) => r.ops));
    let replies: BatchReply[];
    try {
      const results = runBatch(inbox, ops, failpoint);
      let offset = 0;
      replies = requests.map((r) => {
        const slice = results.slice(offset, offset + r.ops.length);
        offset += r.ops.length;
        return { id: r.id, results: slice };
      });
    } catch (error) {
      // The commit itself failed (disk full, I/O error): nothing in these batches is durable.
      const fatal = error instanceof Error ? error.message : String(error);
      replies = requests.map((r) => ({ id: r.id, fatal }));
    }
    port.postMessage({ replies } satisfies CommitReply);
  }
  if (close) {
    inbox.close();
    port.postMessage({ closed: true });
    port.close();
  }
});
