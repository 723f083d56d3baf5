import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  catalogueJsonSchema,
  eventTypes,
  isKnownEventType,
  procureIqEventSchema,
  validateKnownEvent,
} from '../../src/events/catalogue.ts';
import { examplePayloads } from '../../src/events/examples.ts';

describe('event catalogue', () => {
  it('has the 22 event types of the guide, each with an example', () => {
    assert.equal(eventTypes.length, 22);
    assert.deepEqual(Object.keys(examplePayloads).sort(), [...eventTypes].sort());
  });

  for (const [type, payload] of Object.entries(examplePayloads)) {
    it(`validates the guide's ${type} example`, () => {
      assert.equal(validateKnownEvent(payload), null);
      const parsed = procureIqEventSchema.parse(payload);
      assert.equal(parsed.type, type);
    });
  }

  it("accepts the guide's ids even where they are not valid ULIDs", () => {
    // 'evt_01HX900000000000000000001' has 25 characters after the prefix, one short of a ULID.
    assert.equal(examplePayloads['search.started'].id.length - 4, 25);
    assert.equal(validateKnownEvent(examplePayloads['search.started']), null);
  });

  it('accepts fields it does not know, in the envelope and in data', () => {
    const event = {
      ...examplePayloads['order.shipped'],
      traceId: 'abc',
      metadata: { ...examplePayloads['order.shipped'].metadata, region: 'eu' },
      data: { ...examplePayloads['order.shipped'].data, signatureRequired: true },
    };
    assert.equal(validateKnownEvent(event), null);
    assert.equal(procureIqEventSchema.safeParse(event).success, true);
  });

  it('reports what is wrong with a known type whose data does not match', () => {
    const bad = { ...examplePayloads['order.shipped'], data: { orderId: 'ord_1', trackingNumber: 42 } };
    const reason = validateKnownEvent(bad);
    assert.match(reason ?? '', /data\.trackingNumber/);
    assert.match(reason ?? '', /data\.carrierId/);
  });

  it('does not judge types it does not know', () => {
    assert.equal(isKnownEventType('order.teleported'), false);
    assert.equal(validateKnownEvent({ type: 'order.teleported' }), null);
  });

  it('exports every type as JSON Schema', () => {
    const schema = catalogueJsonSchema() as {
      oneOf: { title: string; properties: Record<string, unknown> }[];
    };
    assert.equal(schema.oneOf.length, 22);
    const shipped = schema.oneOf.find((s) => s.title === 'order.shipped');
    assert.ok(shipped);
    const data = shipped.properties.data as {
      properties: Record<string, { type: string }>;
      required: string[];
    };
    assert.equal(data.properties.trackingNumber?.type, 'string');
    assert.ok(data.required.includes('trackingNumber'));
    assert.deepEqual(shipped.properties.type, { type: 'string', const: 'order.shipped' });
  });
});
