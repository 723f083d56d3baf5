// The SQLite writer thread. better-sqlite3 is synchronous and every commit fsyncs, so commits run
// here rather than on the event loop: the HTTP thread keeps parsing and verifying requests while
// this thread waits on the disk, and everything that queued up meanwhile shares the next commit.
import { parentPort, workerData } from 'node:worker_threads';
import type { BatchReply, BatchRequest } from './protocol.ts';
import { runBatch } from './protocol.ts';
import { SqliteInbox } from './sqlite-inbox.ts';

const port = parentPort;
if (!port) throw new Error('writer-thread.ts must run as a worker thread');

let inbox: SqliteInbox;
try {
  inbox = new SqliteInbox((workerData as { path: string }).path);
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ initError: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}

port.on('message', (message: BatchRequest | { close: true }) => {
  if ('close' in message) {
    inbox.close();
    port.postMessage({ closed: true });
    port.close();
    return;
  }
  let reply: BatchReply;
  try {
    reply = { id: message.id, results: runBatch(inbox, message.ops) };
  } catch (error) {
    // The commit itself failed (disk full, I/O error): nothing in this batch is durable.
    reply = { id: message.id, fatal: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
