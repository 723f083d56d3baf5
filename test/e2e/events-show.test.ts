// `events show` on an event whose payload is too deep to render: the CLI prints the raw body.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { runCli, tempDir } from '../helpers/index.ts';

describe('CLI: events show with a payload too deep to render', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('prints the event, why the payload is not rendered, and the raw body; --json too', async () => {
    const path = join(tmp.dir, 'inbox.db');
    const depth = 100_000;
    const raw = JSON.stringify({
      ...examplePayloads['order.created'],
      id: 'evt_cli_deep',
      data: { n: 'HOLE' },
    }).replace('"HOLE"', `${'['.repeat(depth)}${']'.repeat(depth)}`);
    const store = new SqliteStore({ path });
    await store.migrate();
    await store.insertIfAbsent(newEvent('evt_cli_deep', { rawBody: Buffer.from(raw), status: 'unhandled' }));
    await store.close();

    const show = await runCli(['events', 'show', 'evt_cli_deep', '--db', `sqlite:${path}`]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^evt_cli_deep {2}order\.created$/m);
    assert.match(
      show.stdout,
      /Payload:\n {2}\(the payload nests 100002 levels deep; more than 256 cannot be rendered/,
    );
    assert.ok(show.stdout.includes(`Raw body:\n${raw}\n`), 'the raw body is printed as stored');

    const json = await runCli(['events', 'show', 'evt_cli_deep', '--json', '--db', `sqlite:${path}`]);
    assert.equal(json.code, 0, json.stderr);
    const e = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(e.rawBody, raw);
    assert.equal('payload' in e, false);
    assert.match(String(e.payloadError), /100002 levels deep/);
  });
});
