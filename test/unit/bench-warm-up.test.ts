/** The benchmark's cost-growth warm-up: sized so the measured run never crosses a Redis key-table doubling. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { warmUpEvents } from '../../scripts/bench/run.ts';

const crossesDoubling = (from: number, to: number) => 2 ** Math.ceil(Math.log2(from + 1)) <= to;

describe('warmUpEvents', () => {
  it('keeps the default when the measured run stays under the next doubling (1,000,000 users)', () => {
    expect(warmUpEvents(1_000_000, 200_000, 200_000)).toBe(200_000);
  });

  it('goes past the doubling the measured run would cross (10,000 users: 2^18)', () => {
    expect(warmUpEvents(10_000, 200_000, 200_000)).toBe(2 ** 18 - 10_000 + 1_000);
  });

  it('never warms up less than asked, and leaves the measured run clear of a doubling when the gap allows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5_000_000 }), fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 1_000_000 }), (keys, base, measured) => {
        const warm = warmUpEvents(keys, base, measured);
        expect(warm).toBeGreaterThanOrEqual(base);
        const start = keys + warm;
        // The gap up to the next doubling is at least the start itself (powers of two): a measured run of up to
        // half of it, with the slack, fits.
        if (measured + 1_000 < start / 2) expect(crossesDoubling(start, start + measured + 1_000)).toBe(false);
      }),
    );
  });
});
