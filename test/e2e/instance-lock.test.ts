// The SQLite instance lock, black-box: the real CLI, real processes, real kill -9.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  type CliProcess,
  runCli,
  SECRET,
  startCli,
  stopProcess,
  tempDir,
  waitFor,
} from '../helpers/index.ts';

type Server = CliProcess & { port: number };

/** Starts `serve` on port 0 and waits for its own "listening on port N" line, then for /readyz. */
async function serve(dir: string): Promise<Server> {
  const p = startCli(['serve'], {
    cwd: dir,
    env: { WEBHOOK_SECRET: SECRET, PORT: '0', DATABASE_URL: `sqlite:${join(dir, 'inbox.db')}` },
  });
  const port = await waitFor(
    () => {
      if (p.child.exitCode !== null)
        throw new Error(`serve exited early (${p.child.exitCode}): ${p.stderr()}${p.stdout()}`);
      const match = /"msg":"listening on port (\d+)"/.exec(p.stdout());
      return match ? Number(match[1]) : undefined;
    },
    { what: 'the "listening on port" log line' },
  );
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(res.status, 200, await res.text());
  return { ...p, port };
}

describe('one serve per SQLite file: the lock the kernel releases', () => {
  let tmp: ReturnType<typeof tempDir>;
  const running: CliProcess[] = [];

  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(async () => {
    for (const p of running.splice(0)) await stopProcess(p, 'SIGKILL');
    tmp.cleanup();
  });

  it('a stale lock file naming a live, unrelated pid does not stop serve from starting', async () => {
    // The format earlier versions wrote: the owner's pid as text. This test runner's pid is alive
    // and is not a serve, as after a container restart where pid 1 or 7 now belongs to another process.
    writeFileSync(join(tmp.dir, 'inbox.db.lock'), String(process.pid));
    const server = await serve(tmp.dir);
    running.push(server);
    // The lock it now holds refuses a second serve.
    const second = await runCli(['serve'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, PORT: '0', DATABASE_URL: `sqlite:${join(tmp.dir, 'inbox.db')}` },
    });
    assert.equal(second.code, 2, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(`another procureiq-webhooks process \\(pid ${server.child.pid}\\)`),
    );
  });

  it('a second serve on the same file is refused, naming the first one', async () => {
    const first = await serve(tmp.dir);
    running.push(first);
    const second = await runCli(['serve'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, PORT: '0', DATABASE_URL: `sqlite:${join(tmp.dir, 'inbox.db')}` },
    });
    assert.equal(second.code, 2, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(
        `another procureiq-webhooks process \\(pid ${first.child.pid}\\) is serving ${join(tmp.dir, 'inbox.db')}; stop it first, or use PostgreSQL`,
      ),
    );
    // The first one is unharmed.
    assert.equal((await fetch(`http://127.0.0.1:${first.port}/readyz`)).status, 200);
  });

  it('kill -9, then an immediate restart: the new serve starts', async () => {
    const first = await serve(tmp.dir);
    running.push(first);
    await stopProcess(first, 'SIGKILL');
    const second = await serve(tmp.dir);
    running.push(second);
    assert.notEqual(second.child.pid, first.child.pid);
  });

  it('after a clean stop, the next serve starts', async () => {
    const first = await serve(tmp.dir);
    assert.equal(await stopProcess(first, 'SIGTERM'), 0);
    running.push(await serve(tmp.dir));
  });
});
