import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { boundedJson, MAX_RAW_DEPTH, safeRaw } from '../../src/deadletter/dead-letters.ts';

function nestedArray(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function nestedObject(depth: number): unknown {
  let v: unknown = '6222021234567890128';
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('dead-letter payload text: bounded whatever the value', () => {
  test('writes what JSON.stringify writes for ordinary values', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        expect(boundedJson(v, Infinity, Infinity)).toEqual({ text: JSON.stringify(v), truncated: false });
      }),
      { numRuns: 500 },
    );
    expect(boundedJson({ a: undefined, b: [undefined, () => 1], c: NaN, d: new Date(0) }, Infinity, Infinity).text).toBe(
      JSON.stringify({ a: undefined, b: [undefined, () => 1], c: NaN, d: new Date(0) }),
    );
  });

  // Before: safeRaw fell back to String(value), which recursed through Array.prototype.join and threw RangeError.
  test('a value nested thousands of levels deep is cut at MAX_RAW_DEPTH, never a stack overflow', () => {
    for (const deep of [nestedArray(6_000), nestedArray(200_000), nestedObject(6_000), { type: 'charge', cardId: nestedObject(100_000) }]) {
      const text = safeRaw(deep);
      expect(text).toContain('"[nested too deep]"');
      expect(text.length).toBeLessThan(2_100);
    }
    expect(safeRaw(nestedArray(6_000))).toBe('['.repeat(MAX_RAW_DEPTH) + '"[nested too deep]"' + ']'.repeat(MAX_RAW_DEPTH));
  });

  test('a wide or long value costs about MAX_RAW_CHARS, and says it was cut', () => {
    const wide = Array.from({ length: 1_000_000 }, (_, i) => ({ i, cardId: '6222021234567890128' }));
    const text = safeRaw(wide);
    expect(text.length).toBeLessThan(2_100);
    expect(text).toMatch(/… \(truncated\)$/);
    expect(text).not.toMatch(/\d{13}/);
    expect(safeRaw({ eventId: 'x'.repeat(5_000_000) }).length).toBeLessThan(2_100);
    expect(safeRaw('y'.repeat(5_000))).toMatch(/… \(5000 chars\)$/);
  });

  test('card numbers stay masked, at any depth', () => {
    expect(safeRaw(nestedObject(3))).toBe('{"a":{"a":{"a":"[masked …0128]"}}}');
    expect(safeRaw({ cardId: '6222021234567890128', amount: -1 })).toBe('{"cardId":"****0128","amount":-1}');
  });
});
