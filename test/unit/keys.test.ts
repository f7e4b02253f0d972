/** The key layout: every key of a user is in its shard's slot, and no userId, whatever its characters, moves it. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shardOf } from '../../src/pipeline/shards.ts';
import { Keys, userTag } from '../../src/redis/keys.ts';

/** What Redis Cluster hashes: the text between the first "{" and the next "}", when not empty (else the key). */
function hashedPart(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close <= open + 1 ? key : key.slice(open + 1, close);
}

const userKeys = (keys: Keys, userId: string) => [
  keys.ruleState(userId),
  keys.account(userId),
  keys.refunds(userId),
  keys.repayments(userId),
  keys.assetSnapshots(userId),
  keys.socialSnapshots(userId),
  keys.quotaAudit(userId),
];

describe('shard hash tags', () => {
  const keys = new Keys('live', 16);

  // Before shard slots, "a}b" hashed as user "a" and "}x" hashed the whole key (an empty tag).
  it.each(['a}b', '}', '}x', '{x}', 'a{b}c', '%7D', 'a%}b', '{}', ''])('%j: every key of the user is in its shard\'s slot', (userId) => {
    const shard = shardOf(userId, 16);
    for (const key of userKeys(keys, userId)) expect(hashedPart(key)).toBe(`s${shard}`);
  });

  it('puts every key a charge script call names in the shard of its users', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (userId, eventId) => {
        const shard = keys.shardOf(userId);
        const call = [
          keys.decisionStream(shard),
          keys.settlementDue(shard),
          keys.settlementStats(shard),
          keys.creditTotals(shard),
          keys.listCopy(shard, 'merchant'),
          keys.decision(shard, eventId),
          keys.appliedEvent(shard, eventId),
          keys.queuePrefix(`risk-${shard}`),
          ...userKeys(keys, userId),
        ];
        expect(new Set(call.map(hashedPart))).toEqual(new Set([`s${shard}`]));
      }),
      { numRuns: 2_000 },
    );
  });

  it("keeps two users' keys apart: the user part is one-to-one", () => {
    const unit = fc.constantFrom('a', '{', '}', '%', '7', 'B', 'D', ':');
    fc.assert(
      fc.property(fc.string({ unit }), fc.string({ unit }), (a, b) => {
        fc.pre(a !== b);
        expect(keys.ruleState(a)).not.toBe(keys.ruleState(b));
        expect(userKeys(keys, a).filter((k) => userKeys(keys, b).includes(k))).toEqual([]);
      }),
      { numRuns: 2_000 },
    );
  });

  it('gives each global group one tag of its own', () => {
    const groups = {
      lists: [keys.merchantList, keys.merchantListHistory, keys.listVersions('merchant'), keys.userList, keys.cardListHistory],
      rules: [keys.rulesVersions, keys.rulesLive, keys.rulesHistory],
      dl: [keys.deadLetter, keys.deadLetterSources, keys.producerRejections],
      cal: [keys.calibrationRun('2026-01-01'), keys.calibrationRunDone('2026-01-01'), keys.calibrationLatest],
    };
    for (const [tag, members] of Object.entries(groups)) expect(new Set(members.map(hashedPart)), tag).toEqual(new Set([tag]));
  });

  it('leaves ordinary ids readable', () => {
    expect(keys.ruleState('u-1')).toBe(`rm:live:{s${shardOf('u-1', 16)}}:u:{u-1}:rules`);
    expect(userTag('用户-42')).toBe('{用户-42}');
  });
});
