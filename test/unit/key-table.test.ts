/** docs/architecture.md's key table lists exactly the keys src/redis/keys.ts builds (the one place that does). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Keys } from '../../src/redis/keys.ts';
import { RULES } from '../../src/rules/registry.ts';
import type { RuleModule } from '../../src/rules/rule.ts';

describe('key table', () => {
  it('documents every key Keys builds, with nothing extra', () => {
    const doc = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8');
    const table = doc.slice(doc.indexOf('| key | type | what it holds |'));
    const documented = [...table.matchAll(/^\| `(rm:[^`]+)` \|/gm)].map((m) => m[1]!).filter((k) => !k.includes(':q:'));
    const keys = new Keys('<ns>', 4);
    // Each member with placeholder arguments named as the table names them.
    const sample: Record<string, unknown> = { eventId: '<eventId>', userId: '<userId>', settleDate: '<date>', runId: '<date>', shard: '<n>', kind: '<kind>' };
    const built: string[] = [];
    const proto = Object.getPrototypeOf(keys) as object;
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (['constructor', 'queuePrefix', 'shardOf', 'shardBase', 'user'].includes(name)) continue;
      if (d.get) built.push(d.get.call(keys) as string);
      else if (typeof d.value === 'function') {
        const params = /^[^(]*\(([^)]*)\)/.exec(String(d.value))![1]!.split(',').map((p) => p.trim()).filter(Boolean);
        built.push((d.value as (...a: unknown[]) => string).apply(keys, params.map((p) => sample[p] ?? `<${p}>`)));
      }
    }
    // The claim's hash tag is a computed bucket; a user's shard a computed one.
    expect(built.map((k) => k.replace(/:\{\d+\}:/, ':{<bucket>}:').replace(/\{s\d+\}/, '{s<n>}')).sort()).toEqual(documented.sort());
    expect(keys.queuePrefix('risk-3')).toBe('rm:<ns>:{s3}:q');
    expect(keys.queuePrefix('settlement')).toBe('rm:<ns>:{settlement}:q');
  });

  it("lays out the user's rule-state hash as the rules declare it", () => {
    const doc = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8');
    const row = doc.split('\n').find((l) => l.startsWith('| `rm:<ns>:{s<n>}:u:{<userId>}:rules` |'))!;
    for (const rule of RULES as readonly RuleModule[]) {
      for (const { field } of rule.state ?? []) expect(row, `${rule.name}: ${field}`).toContain(`\`${field}\` (`);
    }
  });
});
