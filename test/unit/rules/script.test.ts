/** The rules script's assembly (script.ts): fragments read strictly, spliced in registry order. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluateChargesScript } from '../../../src/rules/charge-rules.ts';
import { RULES } from '../../../src/rules/registry.ts';
import { assembleRulesScript, parseFragment, rulesScript } from '../../../src/rules/script.ts';
import type { RuleModule } from '../../../src/rules/rule.ts';

const CORE = new URL('../../../src/rules/evaluateCharges-n.lua', import.meta.url);

describe('rules script assembly', () => {
  it('reads a fragment: keys, setup, reads, keeps, check, writes, observed, prune', () => {
    const f = parseFragment(
      ['--[[ doc ]]', '--- @key list', '--- @setup', 'local x = 1', '--- @read total localDate', '--- @keeps seen', '--- @check', 'seen = 1', '--- @write counted total = "1"', '--- @observed seen seen', '--- @prune f == "z"', 'stale[#stale + 1] = f'].join('\n'),
      'x.lua',
    );
    expect(f).toMatchObject({ keys: ['list'], setup: 'local x = 1', reads: [{ name: 'total', field: 'localDate' }], keeps: ['seen'], check: 'seen = 1', writes: [{ when: 'counted', name: 'total', value: '"1"' }], observed: [{ name: 'seen', value: 'seen' }], prune: { when: 'f == "z"', body: 'stale[#stale + 1] = f' } });
  });

  it('names the file and line of what it cannot read', () => {
    expect(() => parseFragment('--- @frobnicate', 'a.lua')).toThrow('a.lua:1: unknown directive @frobnicate');
    expect(() => parseFragment('local x = 1', 'b.lua')).toThrow('b.lua:1: code outside a section');
    expect(() => parseFragment('--- @write all total = 1', 'c.lua')).toThrow('c.lua:1: @write total: no @read total before it');
    expect(() => parseFragment('--- @read 9x field', 'd.lua')).toThrow('d.lua:1: not a Lua name: "9x"');
  });

  it('refuses two rules with one name, a core without a marker, a rule decided in both places', () => {
    const fragment = parseFragment('--- @read total localDate', 'x.lua');
    const rule = (name: string) => ({ name, outcome: 'review' }) as RuleModule;
    expect(() => assembleRulesScript(readFileSync(CORE, 'utf8'), [rule('a'), rule('b')], new Map([['a', fragment], ['b', fragment]]))).toThrow(/total is already a name of another rule's fragment/);
    expect(() => assembleRulesScript('--- @rules read', [], new Map())).toThrow(/lacks the marker line\(s\): --- @rules outcomes/);
    expect(() => rulesScript(CORE, [{ ...RULES[0], decide: () => null } as unknown as RuleModule])).toThrow(/either a Lua fragment .* or decide\(\)/);
  });

  it('splices every rule in registry order, and leaves no marker', () => {
    const lua = evaluateChargesScript.lua;
    expect(lua).not.toMatch(/^--- @rules/m);
    const at = RULES.map((r) => lua.indexOf(`  -- ${r.name}`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect(at).toEqual([...at].sort((a, b) => a - b));
    expect(lua).toContain(`local OUTCOMES = { ${RULES.map((r) => `${r.name} = "${r.outcome}"`).join(', ')} }`);
  });
});
