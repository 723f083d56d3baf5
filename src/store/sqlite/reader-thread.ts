// The SQLite reader thread: the dashboard's, the admin API's and /metrics' queries (counts over the
// whole inbox, lists, an event's detail) run here, on a read-only connection of their own. In WAL
// mode they read the last commit without blocking the writer, and a count over a million rows
// holds up neither a commit (so no acknowledgement waits behind a scrape) nor the event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../../util/errors.ts';
import type { ReadReply, ReadRequest } from './protocol.ts';
import { READ_OPERATIONS } from './protocol.ts';
import { SqliteConnection } from './sqlite-connection.ts';

const port = parentPort;
if (!port) throw new Error('reader-thread.ts must run as a worker thread');

const allowed = new Set<string>(READ_OPERATIONS);
let inbox: SqliteConnection;
try {
  inbox = new SqliteConnection((workerData as { path: string }).path, { readonly: true });
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ initError: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}

// One read transaction per operation: `get` runs several queries, and they see one commit.
const read = inbox.db.transaction((request: ReadRequest) => {
  if (!allowed.has(request.op)) throw new Error(`not a read operation: ${request.op}`);
  return (inbox[request.op] as (...a: unknown[]) => unknown).apply(inbox, request.args);
});

port.on('message', (message: ReadRequest | { close: true }) => {
  if ('close' in message) {
    inbox.close();
    port.close();
    return;
  }
  let reply: ReadReply;
  try {
    reply = { id: message.id, result: { ok: true, value: read(message) } };
  } catch (error) {
    reply = { id: message.id, result: { ok: false, error: serializeError(error) } };
  }
  port.postMessage(reply);
});
