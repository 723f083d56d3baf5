import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cliDatabase, replayBudget } from '../../src/cli/open-cli-store.ts';
import { inboxSchema, parseDatabaseUrl, redactUrl } from '../../src/config/database-url.ts';
import { parseDuration, parseDurationList, parseSize } from '../../src/config/duration.ts';
import { parseSecrets, resolveServeConfig } from '../../src/config/resolve-config.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { retryDelay } from '../../src/worker/retry-schedule.ts';

describe('durations', () => {
  it('parses values with a unit', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.deepEqual(parseDurationList('30s, 2m,10m', 'RETRY_SCHEDULE'), [30_000, 120_000, 600_000]);
  });

  it('refuses a bare number and says how to fix it', () => {
    assert.throws(
      () => parseDuration('30', 'HANDLER_TIMEOUT'),
      (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /HANDLER_TIMEOUT: "30" is not a duration \(add a unit, e\.g\. "30s"/);
        return true;
      },
    );
    assert.throws(() => parseDuration('soon'), ConfigError);
    assert.throws(() => parseDuration('-1s'), ConfigError);
  });

  it('parses sizes', () => {
    assert.equal(parseSize('1mb'), 1024 * 1024);
    assert.equal(parseSize('512kb'), 512 * 1024);
    assert.throws(() => parseSize('1gb'), ConfigError);
  });
});

describe('serve configuration', () => {
  it('needs a secret unless in dev mode', () => {
    assert.throws(() => resolveServeConfig({}), /WEBHOOK_SECRET \(--secret\) is required/);
    assert.doesNotThrow(() => resolveServeConfig({ dev: true }));
  });

  it('reports every problem at once', () => {
    assert.throws(
      () =>
        resolveServeConfig({
          secret: 'x',
          port: 'eighty',
          handlerTimeout: '30',
          retrySchedule: '1s,2',
          logLevel: 'loud',
        }),
      (e: Error) => {
        assert.match(e.message, /PORT \(--port\): "eighty" is not a whole number/);
        assert.match(e.message, /HANDLER_TIMEOUT/);
        assert.match(e.message, /RETRY_SCHEDULE/);
        assert.match(e.message, /LOG_LEVEL/);
        return true;
      },
    );
  });

  it('refuses timer durations longer than Node timers wait (they fired after 1 ms)', () => {
    assert.throws(
      () =>
        resolveServeConfig({ secret: 'x', handlerTimeout: '25d', pollInterval: '30d', shutdownGrace: '25d' }),
      (e: Error) => {
        assert.match(e.message, /HANDLER_TIMEOUT[^\n]*: at most 2147483647 ms \(about 24 days\)/);
        assert.match(e.message, /POLL_INTERVAL[^\n]*: at most 2147483647 ms/);
        assert.match(e.message, /SHUTDOWN_GRACE[^\n]*: at most 2147483647 ms/);
        return true;
      },
    );
    assert.equal(
      resolveServeConfig({ secret: 'x', handlerTimeout: '24d' }).handlerTimeoutMs,
      24 * 86_400_000,
    );
  });

  it('splits rotated secrets and drops empty ones', () => {
    assert.deepEqual(parseSecrets('new, old,,'), ['new', 'old']);
    assert.throws(() => resolveServeConfig({ secret: ' , ' }), /only commas/);
    assert.deepEqual(resolveServeConfig({ secret: 'a,b' }).secrets, ['a', 'b']);
  });

  it('resolves defaults', () => {
    const config = resolveServeConfig({ secret: 's' });
    assert.equal(config.port, 3000);
    assert.deepEqual(config.retryScheduleMs, [30_000, 120_000, 600_000]);
    assert.equal(config.handlerTimeoutMs, 30_000);
    assert.equal(config.maxBodyBytes, 1024 * 1024);
    assert.equal(config.database.kind, 'sqlite');
    assert.equal(config.routeYieldMs, 1000);
  });

  it('takes ROUTE_YIELD as a duration, or 0 to turn it off', () => {
    assert.equal(resolveServeConfig({ secret: 's', routeYield: '250ms' }).routeYieldMs, 250);
    assert.equal(resolveServeConfig({ secret: 's', routeYield: '0' }).routeYieldMs, 0);
    assert.throws(() => resolveServeConfig({ secret: 's', routeYield: '5' }), /ROUTE_YIELD.*add a unit/);
  });
});

describe('database URLs', () => {
  it('takes a PostgreSQL schema only as a plain lower-case identifier', () => {
    assert.equal(inboxSchema(undefined), 'procureiq_webhooks');
    assert.equal(inboxSchema('tenant_2'), 'tenant_2');
    for (const bad of ['Tenant', '2tenant', 'a-b', 'x; DROP TABLE events', 'a'.repeat(64)])
      assert.throws(
        () => inboxSchema(bad),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.message === `DATABASE_URL: schema "${bad}" must be a lower-case SQL identifier (a-z, 0-9, _)`,
      );
  });
  it('parses sqlite and postgres URLs and hides passwords', () => {
    assert.deepEqual(parseDatabaseUrl('sqlite:./x.db', '/srv'), { kind: 'sqlite', path: '/srv/x.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite:/abs/x.db'), { kind: 'sqlite', path: '/abs/x.db' });
    assert.equal(parseDatabaseUrl('postgres://u:p@h/db').kind, 'postgres');
    assert.throws(
      () => parseDatabaseUrl('mysql://u:hunter2@h/db'),
      (e: Error) => !e.message.includes('hunter2'),
    );
    assert.equal(redactUrl('postgres://u:hunter2@h/db'), 'postgres://u:***@h/db');
  });
  it("refuses a postgres URL's options= (it replaced the store's search_path) and an empty schema=", () => {
    assert.throws(
      () => parseDatabaseUrl('postgres://u@h/db?schema=s&options=-c%20statement_timeout%3D60000'),
      /DATABASE_URL: "options" is not supported: it would replace the session settings/,
    );
    assert.throws(() => parseDatabaseUrl('postgres://u@h/db?schema='), /\?schema= is empty/);
    assert.equal(parseDatabaseUrl('postgres://u@h/db?schema=s&sslmode=disable').kind, 'postgres');
  });
});

describe('retry schedule', () => {
  const schedule = [30_000, 120_000, 600_000];
  it('follows the schedule by attempt', () => {
    assert.equal(
      retryDelay(schedule, 1, () => 0),
      30_000,
    );
    assert.equal(
      retryDelay(schedule, 2, () => 0),
      120_000,
    );
    assert.equal(
      retryDelay(schedule, 3, () => 0),
      600_000,
    );
    assert.equal(
      retryDelay(schedule, 7, () => 0),
      600_000,
    );
  });
  it('starts over after attempts granted beyond the schedule (a shutdown, a replay)', () => {
    const none = () => 0;
    // Budget 4 (the schedule's 3 retries): as the schedule says.
    assert.equal(retryDelay(schedule, 1, none, 4), 30_000);
    assert.equal(retryDelay(schedule, 3, none, 4), 600_000);
    // A shutdown gave attempt 1 back (budget 5): attempt 2 is the first real run, 30 s after it.
    assert.equal(retryDelay(schedule, 2, none, 5), 30_000);
    assert.equal(retryDelay(schedule, 3, none, 5), 120_000);
    // A dead event (4 attempts) replayed with a fresh budget of 4: its schedule starts over.
    assert.equal(retryDelay(schedule, 5, none, 8), 30_000);
    // A smaller budget than the schedule's uses its start.
    assert.equal(retryDelay(schedule, 1, none, 2), 30_000);
  });
  it('a blank DATABASE_URL is the default inbox for CLI commands too (they refused it)', () => {
    assert.deepEqual(cliDatabase(''), cliDatabase(undefined));
    assert.deepEqual(cliDatabase(' '), cliDatabase(undefined));
    assert.equal(cliDatabase(undefined).kind, 'sqlite');
  });
  it('a blank RETRY_SCHEDULE is the default for CLI replays too (it gave 1 attempt)', () => {
    assert.equal(replayBudget(''), 4);
    assert.equal(replayBudget(' '), 4);
    assert.equal(replayBudget(undefined), 4);
    assert.equal(replayBudget('1s'), 2);
  });
  it('jitter only lengthens, by at most 10%', () => {
    for (const r of [0, 0.3, 0.999, 1]) {
      const d = retryDelay(schedule, 1, () => r);
      assert.ok(d >= 30_000 && d <= 33_000, String(d));
    }
  });
});
