/**
 * The rule registry (src/rules/registry.ts) owns what names rules: the configuration's `rules` part, the decision
 * vocabulary, the metric labels and the README's rule table all come from it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadSettings } from '../../src/config.ts';
import { Metrics } from '../../src/metrics.ts';
import { RULE_NAMES, RULES, ruleDefaults, ruleProblems, ruleTable, rulesConfigSchema } from '../../src/rules/registry.ts';

describe('rule registry', () => {
  it('gives every rule a snake_case name, a camelCase config key, an outcome, and defaults its schema accepts', () => {
    expect(new Set(RULE_NAMES).size).toBe(RULES.length);
    for (const rule of RULES) {
      expect(rule.name).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(rule.configKey).toMatch(/^[a-z]+([A-Z][a-z]+)*$/);
      expect(['review', 'decline']).toContain(rule.outcome);
      expect(rule.config.safeParse(rule.defaults).success, rule.name).toBe(true);
      expect(ruleProblems(rule, rule.config.parse(rule.defaults))).toEqual([]);
    }
  });

  it("is the configuration's rules part: defaults from the modules, an unknown rule key refused", () => {
    const { config } = loadSettings({ env: {} });
    expect(config.rules).toEqual(rulesConfigSchema.parse(ruleDefaults()));
    expect(() => loadSettings({ env: {}, overrides: { rules: { noSuchRule: {} } } })).toThrow(ConfigError);
    // A rule's own check, at its path under rules.
    expect(() => loadSettings({ env: {}, overrides: { rules: { nightLargeAmount: { from: '01:00', to: '01:00' } } } })).toThrow(
      /rules\.nightLargeAmount\.to.*must differ from "from"/s,
    );
  });

  it('labels the rule-hit metric with exactly the registry names', async () => {
    const metric = (await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).find((m) => m.name === 'riskmon_rule_hits_total')!;
    expect(metric.values.map((v) => v.labels.rule).sort()).toEqual([...RULE_NAMES].sort());
  });

  // The script evaluates the rules itself: the registry's outcome and order must be what it does (the rule-edge
  // fixture's hand-written decisions, which the replay test checks against the real pipeline).
  it("agrees with the hand-written decisions: each rule alone gives its outcome, fired rules come in the registry's order", () => {
    const expected = readFileSync(new URL('../fixtures/rule-edges.expected.ndjson', import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { outcome: string; rules?: string[] });
    for (const rule of RULES) {
      const alone = expected.filter((d) => d.rules?.length === 1 && d.rules[0] === rule.name);
      expect(alone.length, rule.name).toBeGreaterThan(0);
      for (const d of alone) expect(d.outcome, rule.name).toBe(rule.outcome);
    }
    for (const d of expected) {
      const order = (d.rules ?? []).map((r) => RULE_NAMES.indexOf(r as (typeof RULE_NAMES)[number]));
      expect(order.every((i) => i >= 0), JSON.stringify(d)).toBe(true);
      expect(order, JSON.stringify(d)).toEqual([...order].sort((a, b) => a - b));
    }
  });

  it("matches the README's rule table, for the default configuration", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Rules'));
    const table = section.slice(section.indexOf('| rule | fires when | outcome |'));
    const rows = table.split('\n').slice(2).filter((l, i, all) => all.slice(0, i + 1).every((m) => m.startsWith('| ')));
    expect(rows).toEqual(ruleTable(loadSettings({ env: {} }).config.rules));
  });
});
