/** The key layout: no userId, whatever its characters, moves its state into another user's hash slot. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Keys, userTag } from '../../src/redis/keys.ts';

/** What Redis Cluster hashes: the text between the first "{" and the next "}", when not empty (else the key). */
function hashedPart(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close <= open + 1 ? key : key.slice(open + 1, close);
}

const decode = (tag: string) => tag.replace(/%7B|%7D|%25/g, (c) => (c === '%7B' ? '{' : c === '%7D' ? '}' : '%'));

describe('user hash tags', () => {
  const keys = new Keys('live');

  // Failed before: "a}b" hashed as user "a", and "}x" hashed the whole key (an empty tag).
  it.each(['a}b', '}', '}x', '{x}', 'a{b}c', '%7D', 'a%}b', '{}'])('%j gets a tag of its own, shared by all its keys', (userId) => {
    const tags = [keys.ruleState(userId), keys.account(userId), keys.repayments(userId), keys.quotaAudit(userId)].map(hashedPart);
    expect(new Set(tags).size).toBe(1);
    expect(decode(tags[0]!)).toBe(userId);
    expect(hashedPart(keys.ruleState(userId))).not.toBe(hashedPart(keys.ruleState('a')));
  });

  it('leaves ordinary ids as they were (existing state keeps its keys)', () => {
    expect(keys.ruleState('u-1')).toBe('rm:live:u:{u-1}:rules');
    expect(userTag('用户-42')).toBe('{用户-42}');
  });

  it('is one-to-one: two ids never share a tag', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', '{', '}', '%', '7', 'B', 'D') }), fc.string({ unit: fc.constantFrom('a', '{', '}', '%', '7', 'B', 'D') }), (a, b) => {
        fc.pre(a.length > 0 && b.length > 0);
        expect(hashedPart(keys.ruleState(a)) === hashedPart(keys.ruleState(b))).toBe(a === b);
        expect(decode(hashedPart(keys.ruleState(a)))).toBe(a);
      }),
      { numRuns: 2_000 },
    );
  });
});
