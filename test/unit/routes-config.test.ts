// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about ${VAR} references in routes files
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadRoutesFile, resolveRoutes } from '../../src/routes/config.ts';
import { closest, RoutesConfigError } from '../../src/routes/problems.ts';
import { ConfigError } from '../../src/util/errors.ts';

const fixtures = join(import.meta.dirname, '../fixtures/routes');
const dir = mkdtempSync(join(tmpdir(), 'routes-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function problemsOf(input: unknown, env: Record<string, string> = {}): string[] {
  try {
    resolveRoutes(input, { env, baseDir: fixtures });
  } catch (error) {
    assert.ok(error instanceof RoutesConfigError, String(error));
    assert.ok(error instanceof ConfigError, 'reported like any configuration error');
    assert.equal(error.message, `invalid routes:\n  - ${error.problems.join('\n  - ')}`);
    return error.problems;
  }
  assert.fail('expected the routes to be refused');
}

async function loadProblems(file: string, env: Record<string, string> = {}): Promise<string[]> {
  try {
    await loadRoutesFile(file, env);
  } catch (error) {
    assert.ok(error instanceof RoutesConfigError, String(error));
    assert.ok(error.message.startsWith(`invalid routes file ${file}:\n  - `));
    return error.problems;
  }
  assert.fail('expected the routes file to be refused');
}

const hook = { type: 'http', url: 'https://hooks.internal/x' };
const oneRoute = [{ name: 'r', match: { types: ['*'] }, to: 'hook' }];

describe('routes file', () => {
  it('loads the documented YAML example', async () => {
    const config = await loadRoutesFile(join(fixtures, 'routes.yaml'), {
      FULFILMENT_SIGNING_SECRET: 's3cret',
    });
    assert.deepEqual(
      [...config.destinations.entries()],
      [
        [
          'fulfilment',
          {
            type: 'http',
            name: 'fulfilment',
            url: 'https://fulfilment.internal/hooks/procureiq',
            secret: 's3cret',
            timeoutMs: 10_000,
            headers: { 'x-team': 'ops' },
          },
        ],
        [
          'payments-queue',
          {
            type: 'rabbitmq',
            name: 'payments-queue',
            url: 'amqp://guest:guest@127.0.0.1:5672',
            queue: 'procureiq.payments',
            exchange: undefined,
            routingKey: undefined,
          },
        ],
        [
          'firehose',
          {
            type: 'redis-stream',
            name: 'firehose',
            url: 'redis://127.0.0.1:6379',
            stream: 'procureiq:events',
            maxLength: 1_000_000,
          },
        ],
        [
          'tickets',
          { type: 'bullmq', name: 'tickets', url: 'redis://127.0.0.1:6379', queue: 'support-tickets' },
        ],
        ['bus', { type: 'nats', name: 'bus', url: 'nats://127.0.0.1:4222', subject: 'procureiq.{type}' }],
      ],
    );
    assert.deepEqual(config.routes, [
      {
        name: 'big-orders',
        match: {
          types: ['order.*'],
          environment: 'production',
          where: { 'data.totalAmount': { $gte: 500 } },
        },
        to: 'fulfilment',
        retryScheduleMs: [10_000, 60_000, 600_000, 3_600_000],
        orderBy: 'data.orderId',
        rateLimit: { count: 50, perMs: 1000 },
        transform: join(fixtures, 'transforms/slim.ts'),
      },
      { name: 'payments', match: { types: ['payment.*'] }, to: 'payments-queue' },
    ]);
  });

  it('loads JSON, with defaults filled in', async () => {
    const config = await loadRoutesFile(join(fixtures, 'routes.json'), {});
    assert.deepEqual(config.destinations.get('events'), {
      type: 'rabbitmq',
      name: 'events',
      url: 'amqps://mq.internal',
      queue: undefined,
      exchange: 'procureiq',
      routingKey: '{type}',
    });
    assert.equal(config.routes[1]?.match.environment, 'sandbox');
    const http = resolveRoutes({ destinations: { hook }, routes: oneRoute }, { env: {} });
    assert.deepEqual(http.destinations.get('hook'), {
      ...hook,
      name: 'hook',
      secret: undefined,
      timeoutMs: 10_000,
      headers: {},
    });
  });

  it('replaces ${VAR} anywhere in a value, and names a missing one with its path', () => {
    const config = resolveRoutes(
      { destinations: { hook: { type: 'http', url: 'https://${HOST}/in?team=${TEAM}' } }, routes: oneRoute },
      { env: { HOST: 'hooks.internal', TEAM: 'ops' } },
    );
    assert.equal(config.destinations.get('hook')?.url, 'https://hooks.internal/in?team=ops');
    assert.deepEqual(
      problemsOf(
        {
          destinations: {
            hook: { ...hook, url: '${HOOK_URL}', secret: '${HOOK_SECRET}', headers: { 'x-a': '${A-B}' } },
          },
          routes: oneRoute,
        },
        { HOOK_URL: '' },
      ),
      [
        'destinations.hook.url: environment variable HOOK_URL is empty',
        'destinations.hook.secret: environment variable HOOK_SECRET is not set',
        'destinations.hook.headers.x-a: "${A-B}" is not a valid environment variable reference',
      ],
    );
  });

  it('never shows a URL password in a message', () => {
    const problems = problemsOf({
      destinations: { mq: { type: 'rabbitmq', url: 'http://guest:hunter2@mq.internal', queue: 'q' } },
      routes: [{ name: 'r', match: { types: ['*'] }, to: 'mq' }],
    });
    assert.deepEqual(problems, [
      'destinations.mq.url: "http://guest:***@mq.internal" must use amqp:// or amqps:// for a rabbitmq destination',
    ]);
  });

  it('reports every destination problem together, each with its path', () => {
    const problems = problemsOf({
      destinatons: {},
      destinations: {
        hook: {
          type: 'http',
          url: 'ftp://x/y',
          timout: '5s',
          timeout: '10',
          headers: { 'x-team': 5, 'bad header': 'v', 'x-ok': 'a\nb' },
          secret: '',
        },
        zero: { type: 'http', url: 'http://x', timeout: '0s' },
        forever: { type: 'http', url: 'http://x', timeout: '25d' },
        'Bad Name!': { type: 'htp', url: 'http://x' },
        notype: { url: 'http://x' },
        both: { type: 'rabbitmq', url: 'amqp://h', queue: 'q', exchange: 'e' },
        neither: { type: 'rabbitmq', url: 'amqp://h' },
        keyed: { type: 'rabbitmq', url: 'amqp://h', queue: 'q', routingKey: 'x' },
        templated: { type: 'rabbitmq', url: 'amqp://h', exchange: 'e', routingKey: '{typ}.x' },
        stream: { type: 'redis-stream', url: 'redis//nope', maxLength: 0, queue: 'x' },
        tickets: { type: 'bullmq', url: 'rediss://h', queue: 'a:b' },
        noqueue: { type: 'bullmq', url: 'redis://h' },
        wild: { type: 'nats', url: 'nats://h', subject: 'procureiq.*.{type}' },
        nourl: { type: 'nats', subject: 'x' },
      },
      routes: oneRoute,
    });
    assert.deepEqual(problems, [
      'destinatons: unknown key (did you mean "destinations"?)',
      'destinations.hook.timout: unknown key for an http destination (did you mean "timeout"?)',
      'destinations.hook.url: "ftp://x/y" must use http:// or https:// for an http destination',
      'destinations.hook.secret: must be a non-empty string',
      'destinations.hook.timeout: "10" is not a duration (add a unit, e.g. "10s" or "10ms"); write a number with a unit: ms, s, m, h or d, e.g. "30s"',
      'destinations.hook.headers.x-team: must be a string (quote it)',
      'destinations.hook.headers.bad header: not a valid header name',
      'destinations.hook.headers.x-ok: must not contain line breaks',
      'destinations.zero.timeout: must be greater than 0',
      "destinations.forever.timeout: at most 2147483647 ms (about 24 days), which Node's timers can wait",
      'destinations.Bad Name!: "Bad Name!" is not a safe name; use letters, digits, ".", "_" and "-", starting with a letter or digit, up to 64',
      'destinations.Bad Name!.type: unknown destination type "htp" (did you mean "http"?); use one of http, rabbitmq, redis-stream, bullmq, nats',
      'destinations.notype.type: required; one of http, rabbitmq, redis-stream, bullmq, nats',
      'destinations.both: give either queue or exchange, not both',
      'destinations.neither: needs a queue (a durable queue, declared if missing) or an exchange (with a routingKey)',
      'destinations.keyed.routingKey: only used with an exchange; a queue receives every message',
      'destinations.templated.routingKey: unknown placeholder "{typ}" (did you mean "{type}"?); use {type} or {environment}',
      'destinations.stream.queue: unknown key for a redis-stream destination',
      'destinations.stream.url: "redis//nope" is not a URL; give a full redis:// or rediss:// address',
      'destinations.stream.stream: required, e.g. procureiq:events',
      'destinations.stream.maxLength: 0 must be a whole number of at least 1',
      'destinations.tickets.queue: "a:b" must not contain ":"',
      'destinations.noqueue.queue: required, e.g. support-tickets',
      'destinations.wild.subject: "procureiq.*.{type}" is not a NATS subject to publish to; use dot-separated tokens without spaces, "*" or ">"',
      'destinations.nourl.url: required, a nats:// or tls:// URL',
    ]);
  });

  it('reports every route problem together, each with its path', () => {
    const problems = problemsOf({
      destinations: { fulfilment: hook, bus: { type: 'nats', url: 'nats://h', subject: 'x.{type}' } },
      routes: [
        {
          name: 'big-orders',
          match: { types: ['order.*'], where: { 'data.totalAmount': { $gtee: 500 } } },
          to: 'fulfilmnet',
          retrySchedule: ['10', '1m', 'soon'],
          orderBy: 'data..x',
          rateLimit: '50/h',
          transform: './nope.ts',
        },
        { name: 'Big-Orders', match: { types: ['*'] }, to: 'bus' },
        { name: 'has space', mtch: {}, to: 'bus', rateLimit: '0/s', transform: './routes.json' },
        {
          name: 'p',
          match: { types: 'order.*', environment: 'prod', extra: 1 },
          to: 'bus',
          rateLimit: 5,
          orderBy: 5,
          retrySchedule: [],
        },
        { name: 'q', match: { types: ['order created', 7] }, to: 'bus' },
        { match: { types: [] }, to: 'nowhere-at-all' },
        'just a string',
      ],
    });
    assert.deepEqual(problems, [
      'routes[0].match.where.data.totalAmount.$gtee: unknown operator "$gtee" (did you mean "$gte"?)',
      'routes[0].to: no destination "fulfilmnet" (did you mean "fulfilment"?)',
      'routes[0].retrySchedule[0]: "10" is not a duration (add a unit, e.g. "10s" or "10ms"); write a number with a unit: ms, s, m, h or d, e.g. "30s"',
      'routes[0].retrySchedule[2]: "soon" is not a duration; write a number with a unit: ms, s, m, h or d, e.g. "30s"',
      'routes[0].orderBy: "data..x" must be a dotted path, e.g. data.orderId',
      'routes[0].rateLimit: "50/h" is not a rate; write n/s or n/m with n > 0, e.g. "50/s"',
      `routes[0].transform: no file at ${join(fixtures, 'nope.ts')}`,
      'routes[1].name: "Big-Orders" is already the name of routes[0]',
      'routes[2].mtch: unknown key (did you mean "match"?)',
      'routes[2].name: "has space" is not a safe name; use letters, digits, ".", "_" and "-", starting with a letter or digit, up to 64',
      'routes[2].match: required, e.g. { types: [order.*] }',
      'routes[2].rateLimit: "0/s" is not a rate; write n/s or n/m with n > 0, e.g. "50/s"',
      `routes[2].transform: ${join(fixtures, 'routes.json')} must be a .ts, .mts, .cts, .js, .mjs or .cjs module`,
      'routes[3].match.extra: unknown key',
      'routes[3].match.types: must be a non-empty list of type globs, e.g. [order.*]',
      'routes[3].match.environment: "prod" must be "production" or "sandbox"',
      'routes[3].retrySchedule: must be a non-empty list of durations, e.g. [10s, 1m, 10m]',
      'routes[3].orderBy: 5 must be a dotted path, e.g. data.orderId',
      'routes[3].rateLimit: 5 is not a rate; write n/s or n/m with n > 0, e.g. "50/s"',
      'routes[4].match.types[0]: "order created" is not a type glob; use letters, digits, ".", "_", "-" and "*"',
      'routes[4].match.types[1]: 7 is not a type glob; use letters, digits, ".", "_", "-" and "*"',
      'routes[5].name: required, e.g. big-orders',
      'routes[5].match.types: must be a non-empty list of type globs, e.g. [order.*]',
      'routes[5].to: no destination "nowhere-at-all"',
      'routes[6]: must be an object with a name, a match and a destination (to)',
    ]);
  });

  it('parses rates and route options', () => {
    const config = resolveRoutes(
      {
        destinations: { hook },
        routes: [
          {
            name: 'a',
            match: { types: ['*'] },
            to: 'hook',
            rateLimit: '120/m',
            retrySchedule: ['500ms', '2m'],
          },
          {
            name: 'b.v2_x-y',
            match: { types: ['order.created', 'payment.*'] },
            to: 'hook',
            rateLimit: '1/s',
          },
        ],
      },
      { env: {} },
    );
    assert.deepEqual(config.routes[0]?.rateLimit, { count: 120, perMs: 60_000 });
    assert.deepEqual(config.routes[0]?.retryScheduleMs, [500, 120_000]);
    assert.deepEqual(config.routes[1]?.rateLimit, { count: 1, perMs: 1000 });
  });

  it('refuses a file that is not an object, or lacks its sections', () => {
    assert.deepEqual(problemsOf(['x']), [
      'the routes file must be an object with "destinations" and "routes"',
    ]);
    assert.deepEqual(problemsOf({}), [
      'destinations: required; name each place events go, e.g. { fulfilment: { type: http, url: … } }',
      'routes: required; a list of routes, e.g. [{ name: big-orders, match: { types: [order.*] }, to: fulfilment }]',
    ]);
    assert.deepEqual(problemsOf({ destinations: [], routes: {} }), [
      'destinations: must be an object of named destinations',
      'routes: must be a list of routes',
    ]);
    // No routes at all is a file that routes nothing (a SIGHUP can turn every route off).
    const none = resolveRoutes({ destinations: {}, routes: [] });
    assert.equal(none.routes.length, 0);
    assert.equal(none.destinations.size, 0);
  });

  it('names the line of a YAML syntax error, with a hint for a bare *', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'destinations:\n  hook: { type: http\nroutes: []\n');
    const [problem] = await loadProblems(bad);
    assert.match(problem ?? '', /^line \d+, column \d+: /);
    const star = join(dir, 'star.yaml');
    writeFileSync(star, 'destinations: {}\nroutes:\n  - { name: all, match: { types: [*] }, to: x }\n');
    const problems = await loadProblems(star);
    assert.ok(
      problems.some((p) => p.endsWith('(quote a bare * as "*")')),
      problems.join('\n'),
    );
    const dup = join(dir, 'dup.yaml');
    writeFileSync(dup, 'destinations: {}\ndestinations: {}\nroutes: []\n');
    assert.match((await loadProblems(dup))[0] ?? '', /^line 2, column 1: Map keys must be unique/);
  });

  it('names a JSON syntax error and a missing file', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "destinations": ');
    assert.match((await loadProblems(bad))[0] ?? '', /^not valid JSON: /);
    await assert.rejects(loadRoutesFile(join(dir, 'missing.yaml'), {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `ROUTES (--routes): no file at ${join(dir, 'missing.yaml')}`);
      return true;
    });
  });

  it('checks that a transform exports a function', async () => {
    const file = join(fixtures, 'bad-transform.yaml');
    assert.deepEqual(await loadProblems(file), [
      `routes[0].transform: ${join(fixtures, 'transforms/not-a-function.ts')} must export default a function (event) => body | null, not object`,
    ]);
  });
});

describe('did you mean', () => {
  it('suggests only close names, counting a swap as one edit', () => {
    assert.equal(closest('fulfilmnet', ['fulfilment', 'payments']), 'fulfilment');
    assert.equal(closest('Fulfilment', ['fulfilment']), 'fulfilment');
    assert.equal(closest('htp', ['http', 'nats']), 'http');
    assert.equal(closest('kafka', ['http', 'nats', 'rabbitmq']), undefined);
    assert.equal(closest('x', []), undefined);
  });
});
