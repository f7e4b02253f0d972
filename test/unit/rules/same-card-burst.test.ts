/** same_card_burst's own parts: what it keeps (retention, thinning bound), what it can change live, its encoding. */
import { describe, expect, it } from 'vitest';
import { testScriptEnv } from '../../helpers/charges.ts';
import { cardRetentionSeconds, decodeWindow, encodeWindow, sameCardBurst, thinAbove, windowLabel } from '../../../src/rules/same-card-burst.ts';

const started = sameCardBurst.config.parse(sameCardBurst.defaults);

describe('same_card_burst', () => {
  it('keeps window + late tolerance + future skew, and thins above 2·(minCount − 1) per bucket', () => {
    expect(cardRetentionSeconds(started, 300)).toBe(600 + 3600 + 300);
    // 4,500 s over 600 s buckets: 8 buckets, one more for a window straddling two.
    expect(thinAbove(started, 300)).toBe(2 * 2 * 9);
  });

  it('gives its script what the started configuration keeps, whatever the live one asks', () => {
    const live = sameCardBurst.config.parse({ windowSeconds: 300, minCount: 2, lateToleranceSeconds: 3600 });
    const cfg = sameCardBurst.scriptConfig!(live, started, { ...testScriptEnv(), maxFutureSkewSeconds: 300 });
    expect(cfg).toMatchObject({ windowMs: 300_000, minCount: 2, windowLabel: '5 min', retentionMs: 4_500_000, thinBucketMs: 600_000, thinKeep: 2, fieldPrefix: 'c:' });
  });

  it('may narrow live, never widen past what is kept', () => {
    const check = (c: object) => sameCardBurst.liveCheck!(started, sameCardBurst.config.parse({ ...sameCardBurst.defaults, ...c })).map((p) => p.path.join('.'));
    expect(check({ windowSeconds: 300, minCount: 2 })).toEqual([]);
    expect(check({ windowSeconds: 601 })).toEqual(['windowSeconds']);
    expect(check({ minCount: 4 })).toEqual(['minCount']);
    expect(check({ lateToleranceSeconds: 60 })).toEqual(['lateToleranceSeconds']);
  });

  it('labels windows and encodes times as the script does', () => {
    expect([windowLabel(600), windowLabel(45)]).toEqual(['10 min', '45 s']);
    const times = [Date.parse('2026-03-10T02:00:00Z'), Date.parse('2026-03-10T02:00:01.5Z')];
    expect(decodeWindow(encodeWindow(times))).toEqual(times);
    expect(decodeWindow('')).toEqual([]);
  });
});
