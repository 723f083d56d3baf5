import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileGlob, compileGlobs } from '../../src/routes/glob.ts';
import { matchRoutes } from '../../src/routes/match.ts';
import { orderKey } from '../../src/routes/ordering.ts';
import { RoutesConfigError } from '../../src/routes/problems.ts';
import { forwardedDeliveryId } from '../../src/routes/route-jobs.ts';
import type { RouteConfig } from '../../src/routes/types.ts';
import { compilePath, compileWhere } from '../../src/routes/where.ts';

const envelope = {
  id: 'evt_1',
  type: 'order.created',
  created: 1_700_000_000,
  data: {
    orderId: 'ord_42',
    totalAmount: 750,
    currency: 'EUR',
    status: 'approved',
    flagged: false,
    note: null,
    lineItems: [{ sku: 'SKU-1' }, { sku: 'SKU-2' }],
    createdAt: '2024-05-01T10:00:00Z',
  },
  metadata: { environment: 'production' },
};

const where = (filter: Record<string, unknown>) => compileWhere(filter)(envelope);

function problemsOf(filter: unknown): string[] {
  try {
    compileWhere(filter);
  } catch (error) {
    assert.ok(error instanceof RoutesConfigError);
    return error.problems;
  }
  assert.fail('expected the filter to be refused');
}

describe('type globs', () => {
  it('matches exactly, by family and everything', () => {
    assert.equal(compileGlob('order.created')('order.created'), true);
    assert.equal(compileGlob('order.created')('order.created.v2'), false);
    assert.equal(compileGlob('order.*')('order.created'), true);
    assert.equal(compileGlob('order.*')('order.line.added'), true, '* spans dots');
    assert.equal(compileGlob('order.*')('orders.created'), false);
    assert.equal(compileGlob('order.*')('payment.order.x'), false);
    assert.equal(compileGlob('*.failed')('payment.failed'), true);
    assert.equal(compileGlob('*')('anything.at.all'), true);
  });

  it('treats every other character literally', () => {
    assert.equal(compileGlob('order.created')('orderXcreated'), false, '"." is not a regex wildcard');
    assert.equal(compileGlob('a-b*')('a-bc'), true);
  });

  it('matches a list when any glob does', () => {
    const m = compileGlobs(['order.*', 'payment.failed']);
    assert.equal(m('payment.failed'), true);
    assert.equal(m('payment.settled'), false);
  });
});

describe('where filters', () => {
  it('takes a bare value as $eq and several keys as AND', () => {
    assert.equal(where({ 'data.currency': 'EUR' }), true);
    assert.equal(where({ 'data.currency': 'USD' }), false);
    assert.equal(where({ 'data.currency': 'EUR', 'data.totalAmount': 750 }), true);
    assert.equal(where({ 'data.currency': 'EUR', 'data.totalAmount': 751 }), false);
    assert.equal(where({ 'data.flagged': false, 'data.note': null }), true);
    assert.equal(where({}), true);
  });

  it('reads dotted paths, array indexes and only own properties', () => {
    assert.equal(where({ 'metadata.environment': 'production' }), true);
    assert.equal(where({ 'data.lineItems.1.sku': 'SKU-2' }), true);
    assert.equal(where({ 'data.lineItems.sku': { $exists: true } }), false, 'no implicit array traversal');
    assert.equal(where({ 'data.constructor': { $exists: true } }), false);
    assert.equal(where({ 'data.orderId.length': { $exists: true } }), false);
    assert.equal(compilePath('a.b')({ a: null }), undefined);
  });

  it('supports every field operator', () => {
    const cases: [Record<string, unknown>, boolean][] = [
      [{ $eq: 750 }, true],
      [{ $eq: 751 }, false],
      [{ $ne: 751 }, true],
      [{ $ne: 750 }, false],
      [{ $in: [1, 750] }, true],
      [{ $in: [1, 2] }, false],
      [{ $nin: [1, 2] }, true],
      [{ $nin: [750] }, false],
      [{ $gt: 749 }, true],
      [{ $gt: 750 }, false],
      [{ $gte: 750 }, true],
      [{ $gte: 751 }, false],
      [{ $lt: 751 }, true],
      [{ $lt: 750 }, false],
      [{ $lte: 750 }, true],
      [{ $lte: 749 }, false],
      [{ $exists: true }, true],
      [{ $exists: false }, false],
      [{ $gte: 500, $lt: 1000 }, true],
      [{ $gte: 500, $lt: 700 }, false],
      [{ $not: { $gte: 500 } }, false],
      [{ $not: 1 }, true],
    ];
    for (const [condition, expected] of cases) {
      assert.equal(where({ 'data.totalAmount': condition }), expected, JSON.stringify(condition));
    }
    assert.equal(where({ 'data.orderId': { $startsWith: 'ord_' } }), true);
    assert.equal(where({ 'data.orderId': { $startsWith: 'inv_' } }), false);
    assert.equal(where({ 'data.orderId': { $endsWith: '_42' } }), true);
    assert.equal(where({ 'data.orderId': { $endsWith: '_43' } }), false);
    assert.equal(where({ 'data.createdAt': { $gte: '2024-01-01' } }), true, 'strings order');
    assert.equal(where({ 'data.missing': { $exists: false } }), true);
    assert.equal(where({ 'data.note': { $exists: true } }), true, 'null exists');
  });

  it('supports $and, $or and $not over filters', () => {
    assert.equal(where({ $and: [{ 'data.currency': 'EUR' }, { 'data.totalAmount': { $gt: 500 } }] }), true);
    assert.equal(where({ $and: [{ 'data.currency': 'EUR' }, { 'data.totalAmount': { $gt: 800 } }] }), false);
    assert.equal(where({ $or: [{ 'data.currency': 'USD' }, { 'data.totalAmount': { $gt: 500 } }] }), true);
    assert.equal(where({ $or: [{ 'data.currency': 'USD' }, { 'data.totalAmount': { $gt: 800 } }] }), false);
    assert.equal(where({ $not: { 'data.currency': 'USD' } }), true);
    assert.equal(where({ $not: { 'data.currency': 'EUR' } }), false);
    assert.equal(
      where({ $or: [{ $and: [{ 'data.status': 'approved' }, { $not: { 'data.flagged': true } }] }] }),
      true,
    );
  });

  it('never compares values of different types', () => {
    const e = { data: { n: 600, s: '600', b: true } };
    const on = (f: Record<string, unknown>) => compileWhere(f)(e);
    assert.equal(on({ 'data.s': { $gt: 500 } }), false, 'a string is not compared with a number');
    assert.equal(on({ 'data.n': { $gt: '500' } }), false, 'a number is not compared with a string');
    assert.equal(on({ 'data.s': 600 }), false);
    assert.equal(on({ 'data.n': '600' }), false);
    assert.equal(on({ 'data.b': { $in: ['true', 1] } }), false);
    assert.equal(on({ 'data.n': { $startsWith: '6' } }), false);
    assert.equal(on({ 'data.missing': { $lt: 1 } }), false);
    assert.equal(on({ 'data.missing': { $ne: 1 } }), true, '$ne matches a missing field');
    assert.equal(on({ 'data.missing': { $nin: [1] } }), true, '$nin matches a missing field');
    assert.equal(on({ 'data.missing': null }), false, '$eq null matches only an explicit null');
  });

  it('reports every problem with its path', () => {
    assert.deepEqual(
      problemsOf({
        'data.totalAmount': { $gtee: 500, $gte: true },
        'data.tags': ['a', 'b'],
        $or: [],
        $gte: 5,
        $xor: [],
        'data.status': { $in: [] },
        'data.orderId': { $startsWith: 5, $exists: 'yes' },
        'data.customer': { id: 'c1' },
        'data..x': 1,
        'data.y': { $and: [] },
        'data.z': {},
        'data.w': { $eq: { a: 1 } },
      }),
      [
        'where.data.totalAmount.$gtee: unknown operator "$gtee" (did you mean "$gte"?)',
        'where.data.totalAmount.$gte: must be a number or a string, not boolean true',
        'where.data.tags: a list is not a condition; to match any of several values use { $in: [...] }',
        'where.$or: must be a non-empty list of filters, e.g. [{ type: order.created }, …]',
        'where.$gte: "$gte" compares a field; put it under a path, e.g. { data.totalAmount: { $gte: 500 } }',
        'where.$xor: unknown operator "$xor" (did you mean "$or"?)',
        'where.data.status.$in: must be a non-empty list of strings, numbers, booleans or nulls, not a list',
        'where.data.orderId.$startsWith: must be a string, not number 5',
        'where.data.orderId.$exists: must be true or false, not the string "yes"',
        'where.data.customer.id: "id" is not an operator; to reach a nested field make it part of the key, e.g. "customer.id"',
        'where.data..x: "data..x" is not a dotted path, e.g. "data.totalAmount"',
        'where.data.y.$and: "$and" combines filters; use it at the top of where, not under a field',
        'where.data.z: an empty condition; give a value or operators, e.g. { $gte: 500 }',
        'where.data.w.$eq: must be a string, number, boolean or null, not an object',
      ],
    );
    assert.deepEqual(problemsOf([{ a: 1 }]), [
      'where: must be an object of conditions, e.g. { data.totalAmount: { $gte: 500 } }',
    ]);
    assert.deepEqual(problemsOf({ $and: [{ 'data.a': { $lt: null } }] }), [
      'where.$and[0].data.a.$lt: must be a number or a string, not null',
    ]);
  });

  it('appends to a given problem list instead of throwing', () => {
    const problems: string[] = ['earlier'];
    const predicate = compileWhere({ 'data.a': { $gtx: 1 } }, 'routes[0].match.where', problems);
    assert.equal(typeof predicate, 'function');
    assert.deepEqual(problems, [
      'earlier',
      'routes[0].match.where.data.a.$gtx: unknown operator "$gtx" (did you mean "$gt"?)',
    ]);
  });
});

describe('matchRoutes', () => {
  const route = (name: string, match: RouteConfig['match']): RouteConfig => ({ name, match, to: 'd' });
  const routes = [
    route('all', { types: ['*'] }),
    route('orders', { types: ['order.*'] }),
    route('created-exact', { types: ['order.created'] }),
    route('prod-big', {
      types: ['order.*'],
      environment: 'production',
      where: { 'data.totalAmount': { $gte: 500 } },
    }),
    route('sandbox', { types: ['*'], environment: 'sandbox' }),
  ];
  const names = (rs: RouteConfig[]) => rs.map((r) => r.name);

  it('answers every matching route, in order', () => {
    assert.deepEqual(
      names(matchRoutes(routes, { type: 'order.created', environment: 'production', envelope })),
      ['all', 'orders', 'created-exact', 'prod-big'],
    );
  });

  it('checks environment and where', () => {
    assert.deepEqual(
      names(matchRoutes(routes, { type: 'order.created', environment: 'sandbox', envelope })),
      ['all', 'orders', 'created-exact', 'sandbox'],
    );
    const small = { ...envelope, data: { ...envelope.data, totalAmount: 10 } };
    assert.deepEqual(
      names(matchRoutes(routes, { type: 'order.created', environment: 'production', envelope: small })),
      ['all', 'orders', 'created-exact'],
    );
  });

  it('routes an unknown type only where a glob matches it', () => {
    const unknown = { type: 'order.teleported', environment: 'production' as const, envelope: {} };
    assert.deepEqual(names(matchRoutes(routes, unknown)), ['all', 'orders']);
    const other = { type: 'warehouse.moved', environment: 'production' as const, envelope: {} };
    assert.deepEqual(names(matchRoutes(routes, other)), ['all']);
  });

  it('tolerates an envelope that is not an object', () => {
    assert.deepEqual(
      names(matchRoutes(routes, { type: 'order.created', environment: 'production', envelope: null })),
      ['all', 'orders', 'created-exact'],
    );
  });
});

describe('orderKey', () => {
  it('reads the dotted path as a string, or null', () => {
    assert.equal(orderKey({ orderBy: 'data.orderId' }, envelope), 'ord_42');
    assert.equal(orderKey({ orderBy: 'data.totalAmount' }, envelope), '750');
    assert.equal(orderKey({ orderBy: 'data.lineItems.0.sku' }, envelope), 'SKU-1');
    assert.equal(orderKey({ orderBy: 'data.missing' }, envelope), null);
    assert.equal(orderKey({ orderBy: 'data.note' }, envelope), null);
    assert.equal(orderKey({ orderBy: 'data.lineItems' }, envelope), null);
    assert.equal(orderKey({}, envelope), null);
  });

  it('stores U+0000 as U+FFFD (PostgreSQL text cannot hold it; the insert of the event failed)', () => {
    assert.equal(orderKey({ orderBy: 'data.orderId' }, { data: { orderId: 'ord_\u00001' } }), 'ord_\uFFFD1');
  });
});

describe('forwardedDeliveryId', () => {
  it('is a valid UUID (version 8, RFC variant), stable per event and route, different across routes', () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const variants = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const id = forwardedDeliveryId(`evt_${i}`, 'ship');
      assert.match(id, uuid);
      variants.add(id.charAt(19));
    }
    assert.equal(variants.size, 4, 'all four variant digits occur: the bits come from the hash');
    assert.equal(forwardedDeliveryId('evt_1', 'ship'), forwardedDeliveryId('evt_1', 'ship'));
    assert.notEqual(forwardedDeliveryId('evt_1', 'ship'), forwardedDeliveryId('evt_1', 'audit'));
  });
});
