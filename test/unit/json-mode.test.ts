import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { encodeJsonMessages, jsonArrayBody, storedMessagesLength } from '../../src/protocol/json-mode.ts';
import { BadRequestError } from '../../src/protocol/errors.ts';

const stored = (body: string) => encodeJsonMessages(Buffer.from(body));

describe('JSON mode', () => {
  test('flattens exactly one level of arrays', () => {
    expect(stored('{"a":1}').messageCount).toBe(1);
    expect(stored('[{"a":1},{"b":2}]').messageCount).toBe(2);
    expect(stored('[[1,2],[3,4]]').messageCount).toBe(2);
    expect(stored('[[[1,2,3]]]').messageCount).toBe(1);
    expect(stored('[]').messageCount).toBe(0);
  });

  test('keeps the original text of each message (big numbers survive)', () => {
    const body = '[12345678901234567890, {"s": "a,]\\"}["}, 1.50]';
    expect(JSON.parse(jsonArrayBody([stored(body).bytes]).toString())).toEqual(JSON.parse(body));
    expect(jsonArrayBody([stored(body).bytes]).toString()).toBe('[12345678901234567890,{"s": "a,]\\"}["},1.50]');
  });

  test('rejects invalid JSON and invalid UTF-8 with 400', () => {
    expect(() => stored('{ invalid json }')).toThrow(BadRequestError);
    expect(() => encodeJsonMessages(Buffer.from([0x22, 0xff, 0x22]))).toThrow(BadRequestError);
  });

  test('an empty range is the empty array', () => {
    expect(jsonArrayBody([]).toString()).toBe('[]');
  });

  test('any array of JSON values round-trips, and message lengths split it', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 20 }), (values) => {
        const { bytes, messageCount } = stored(JSON.stringify(values));
        expect(messageCount).toBe(values.length);
        expect(JSON.parse(jsonArrayBody([bytes]).toString())).toEqual(JSON.parse(JSON.stringify(values)));
        for (let k = 0; k <= values.length; k++) {
          const length = storedMessagesLength(bytes, k);
          expect(length).toBeDefined();
          expect(JSON.parse(jsonArrayBody([bytes.subarray(0, length)]).toString())).toEqual(JSON.parse(JSON.stringify(values.slice(0, k))));
        }
        expect(storedMessagesLength(bytes, values.length + 1)).toBeUndefined();
      }),
    );
  });
});
