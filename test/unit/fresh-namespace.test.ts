/** Test namespaces never make the ids built on them look like card numbers (found in CI: a chaos run lost 290 events). */
import { describe, expect, it } from 'vitest';
import { findCardNumber } from '../../src/events/card.ts';
import { freshNamespace } from '../helpers/context.ts';

describe('freshNamespace', () => {
  it('gives ids like "<namespace>-<n>" that hold no card number', () => {
    const cardLike: string[] = [];
    // Before: about 1 namespace in 110 was all decimal digits, and some 2% of the ids built on those were cards.
    for (let i = 0; i < 20_000; i++) {
      const namespace = freshNamespace('chaos-restart');
      for (let n = 100; n < 120; n++) if (findCardNumber(`${namespace}-${n}`)) cardLike.push(`${namespace}-${n}`);
    }
    expect(cardLike).toEqual([]);
  });
});
