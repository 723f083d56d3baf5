// README claims about migrations and configuration, through the real CLI: `migrate`,
// `serve --no-migrate`, `/readyz` while migrations are behind, and flags winning over env vars.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  type CliProcess,
  dropSchema,
  freePort,
  PG_URL,
  runCli,
  SECRET,
  startCli,
  stopProcess,
  tempDir,
  uniqueSchema,
  waitFor,
} from '../helpers/index.ts';

type Server = CliProcess & { port: number };

/** Starts `serve` and waits for its "listening on port N" log line; fails if it exits first. */
async function serve(cwd: string, env: Record<string, string>, args: string[] = []): Promise<Server> {
  const p = startCli(['serve', ...args], { cwd, env: { WEBHOOK_SECRET: SECRET, PORT: '0', ...env } });
  const port = await waitFor(
    () => {
      if (p.child.exitCode !== null)
        throw new Error(`serve exited early (${p.child.exitCode}): ${p.stderr()}${p.stdout()}`);
      const match = /"msg":"listening on port (\d+)"/.exec(p.stdout());
      return match ? Number(match[1]) : undefined;
    },
    { what: 'the "listening on port" log line' },
  );
  return { ...p, port };
}

const readyz = async (port: number) => {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
};

describe('migrations and configuration, through the CLI', () => {
  const tmp = tempDir();
  const db = new pg.Client({ connectionString: PG_URL });
  const schemas: string[] = [];
  const running: CliProcess[] = [];
  const pgUrl = () => {
    const schema = uniqueSchema('piq_migrate');
    schemas.push(schema);
    return { schema, url: `${PG_URL}?schema=${schema}` };
  };

  before(() => db.connect());
  afterEach(async () => {
    for (const p of running.splice(0)) await stopProcess(p, 'SIGKILL');
  });
  after(async () => {
    await db.end();
    for (const schema of schemas) await dropSchema(schema);
    tmp.cleanup();
  });

  it('migrate creates a SQLite inbox and reports it current; running it again changes nothing', async () => {
    const file = join(tmp.dir, 'migrated.db');
    const first = await runCli(['migrate', '--db', `sqlite:${file}`]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `migrations are current on ${file}\n`);
    const versions = () => {
      const inbox = new Database(file, { readonly: true });
      try {
        return inbox.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      } finally {
        inbox.close();
      }
    };
    const applied = versions();
    assert.ok(applied.length >= 1);
    const second = await runCli(['migrate'], { env: { DATABASE_URL: `sqlite:${file}` } });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(versions(), applied);
  });

  it('migrate on PostgreSQL: the schema is created and every migration recorded', async () => {
    const { schema, url } = pgUrl();
    const r = await runCli(['migrate', '--db', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^migrations are current on postgres:\/\//);
    const { rows } = await db.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    assert.ok(rows.length >= 1);
    assert.deepEqual(
      rows.map((row: { version: number }) => row.version),
      rows.map((_: unknown, i: number) => i + 1),
    );
  });

  it('serve --no-migrate on PostgreSQL refuses to start while migrations are pending, and starts after migrate', async () => {
    const { url } = pgUrl();
    const refused = await runCli(['serve', '--no-migrate'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, PORT: '0', DATABASE_URL: url },
    });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /^procureiq-webhooks: migrations are behind \(0 of \d+\); run "procureiq-webhooks migrate"\n$/,
    );
    assert.equal((await runCli(['migrate', '--db', url])).code, 0);
    const server = await serve(tmp.dir, { DATABASE_URL: url }, ['--no-migrate']);
    running.push(server);
    assert.deepEqual(await readyz(server.port), { status: 200, body: { status: 'ready' } });
  });

  it('serve --no-migrate on SQLite still migrates: the embedded store always does', async () => {
    const server = await serve(tmp.dir, { DATABASE_URL: `sqlite:${join(tmp.dir, 'no-migrate.db')}` }, [
      '--no-migrate',
    ]);
    running.push(server);
    assert.equal((await readyz(server.port)).status, 200);
  });

  it('/readyz is not ready, with the reason, while the database is behind the code', async () => {
    const { schema, url } = pgUrl();
    const server = await serve(tmp.dir, { DATABASE_URL: url });
    running.push(server);
    assert.equal((await readyz(server.port)).status, 200);
    // As if the code were upgraded past the database: the latest migration is not recorded.
    const { rows } = await db.query(
      `DELETE FROM "${schema}".schema_migrations WHERE version = (SELECT MAX(version) FROM "${schema}".schema_migrations) RETURNING version, name`,
    );
    const latest = rows[0] as { version: number; name: string };
    const behind = await readyz(server.port);
    assert.equal(behind.status, 503);
    assert.equal(behind.body.status, 'not_ready');
    assert.equal(
      behind.body.reason,
      `migrations are behind (${latest.version - 1} of ${latest.version}); run "procureiq-webhooks migrate"`,
    );
    await db.query(`INSERT INTO "${schema}".schema_migrations (version, name) VALUES ($1, $2)`, [
      latest.version,
      latest.name,
    ]);
    assert.deepEqual(await readyz(server.port), { status: 200, body: { status: 'ready' } });
  });

  it('a flag wins over its environment variable', async () => {
    const [flagPort, envPort] = [await freePort(), await freePort()];
    const server = await serve(
      tmp.dir,
      {
        DATABASE_URL: `sqlite:${join(tmp.dir, 'env.db')}`,
        PORT: String(envPort),
        // Unparsable in the environment, but the flag is used and the variable never read.
        HANDLER_TIMEOUT: '30',
      },
      ['--port', String(flagPort), '--db', `sqlite:${join(tmp.dir, 'flag.db')}`, '--handler-timeout', '5s'],
    );
    running.push(server);
    assert.equal(server.port, flagPort);
    assert.match(server.stdout(), new RegExp(`"database":"sqlite:${join(tmp.dir, 'flag.db')}"`));
    // And an unparsable flag is reported as given, whatever the variable holds.
    const bad = await runCli(['serve', '--worker-concurrency', 'many'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, WORKER_CONCURRENCY: '4', PORT: '0' },
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /WORKER_CONCURRENCY \(--worker-concurrency\): "many" is not a whole number/);
  });

  it('SQLITE_WRITER is read from the environment, and a bad value names it', async () => {
    const bad = await runCli(['serve'], {
      cwd: tmp.dir,
      env: { WEBHOOK_SECRET: SECRET, PORT: '0', SQLITE_WRITER: 'fast' },
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /SQLITE_WRITER \(--sqlite-writer\): "fast" must be "thread" or "inline"/);
  });
});
