/**
 * Assembles the rules script: the core (evaluateCharges-n.lua) with each rule's Lua fragment spliced in at its
 * "--- @rules <section>" lines, in registry order, once per process. The result is still one atomic script call per
 * run of charges, and straight-line code per charge (no Lua function call per rule): the hot path costs what a
 * hand-written script would. The fragment format is described in the core's header.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { ScriptFile } from '../redis/scripts.ts';
import type { RuleModule } from './rule.ts';

export interface Fragment {
  source: string;
  keys: string[];
  userKeys: string[];
  setup: string;
  reads: { name: string; field: string }[];
  keeps: string[];
  check: string;
  writes: { when: 'all' | 'counted'; name: string; value: string }[];
  observed: { name: string; value: string }[];
  /** Lua string expressions whose values are appended to the charge record's flags. */
  record: string[];
  prune?: { when: string; body: string };
  counted: string;
  finish: string;
}

const LUA_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads a fragment's directives and sections; a line it does not understand is an error naming the line. */
export function parseFragment(text: string, source: string): Fragment {
  const fragment: Fragment = { source, keys: [], userKeys: [], setup: '', reads: [], keeps: [], check: '', writes: [], observed: [], record: [], counted: '', finish: '' };
  type Section = 'setup' | 'check' | 'prune' | 'counted' | 'finish';
  let section: Section | null = null;
  const body: Record<Section, string[]> = { setup: [], check: [], prune: [], counted: [], finish: [] };
  let pruneWhen: string | undefined;
  const lines = text.split('\n');
  const fail = (n: number, message: string): never => {
    throw new Error(`${source}:${n + 1}: ${message}`);
  };
  const name = (n: number, value: string | undefined): string => (value !== undefined && LUA_NAME.test(value) ? value : fail(n, `not a Lua name: ${JSON.stringify(value)}`));
  let header = false;
  for (const [n, line] of lines.entries()) {
    if (n === 0 && line.startsWith('--[[')) header = true;
    if (header) {
      if (line.includes(']]')) header = false;
      continue;
    }
    const m = /^--- @(\w+)(?: (.*))?$/.exec(line);
    if (!m) {
      if (section) body[section].push(line);
      else if (line.trim() !== '') fail(n, 'code outside a section (--- @setup, @check, @counted, @finish or @prune)');
      continue;
    }
    const [, directive, rest = ''] = m;
    const words = rest.split(' ');
    section = null;
    switch (directive) {
      case 'key':
        fragment.keys.push(name(n, rest));
        break;
      case 'userkey':
        fragment.userKeys.push(name(n, rest));
        break;
      case 'read':
        fragment.reads.push({ name: name(n, words[0]), field: words.slice(1).join(' ') || fail(n, '@read <var> <field expression>') });
        break;
      case 'keeps':
        fragment.keeps.push(...words.map((w) => name(n, w)));
        break;
      case 'write': {
        const w = /^(all|counted) (\w+) = (.+)$/.exec(rest) ?? fail(n, '@write all|counted <var> = <value expression>');
        if (!fragment.reads.some((r) => r.name === w[2])) fail(n, `@write ${w[2]}: no @read ${w[2]} before it (a rule writes the fields it reads)`);
        fragment.writes.push({ when: w[1] as 'all' | 'counted', name: w[2]!, value: w[3]! });
        break;
      }
      case 'observed':
        fragment.observed.push({ name: name(n, words[0]), value: words.slice(1).join(' ') || fail(n, '@observed <name> <json expression>') });
        break;
      case 'record':
        if (rest === '') fail(n, '@record <string expression>');
        fragment.record.push(rest);
        break;
      case 'setup':
      case 'check':
      case 'counted':
      case 'finish':
        if (rest !== '') fail(n, `@${directive} takes nothing on its line`);
        section = directive;
        break;
      case 'prune':
        if (rest === '') fail(n, '@prune <when expression>');
        if (pruneWhen !== undefined) fail(n, 'a second @prune');
        pruneWhen = rest;
        section = 'prune';
        break;
      default:
        fail(n, `unknown directive @${directive}`);
    }
  }
  fragment.setup = body.setup.join('\n').trim();
  fragment.check = body.check.join('\n').trim();
  fragment.counted = body.counted.join('\n').trim();
  fragment.finish = body.finish.join('\n').trim();
  if (pruneWhen !== undefined) fragment.prune = { when: pruneWhen, body: body.prune.join('\n').trim() };
  return fragment;
}

/** The core's marker lines, each replaced by generated code. */
const MARKER = /^--- @rules (outcomes|setup|user keys|read|check|prune|write declined|write counted|counted|observed|record|finish)$/gm;

const indent = (code: string, by: string) =>
  code
    .split('\n')
    .map((l) => (l === '' ? l : by + l))
    .join('\n');

/** The core with every rule spliced in. `fragments` by rule name, for the rules with a `lua` file. */
export function assembleRulesScript(core: string, rules: readonly RuleModule[], fragments: ReadonlyMap<string, Fragment>): string {
  const inScript = rules.filter((r) => fragments.has(r.name));
  const frag = (r: RuleModule) => fragments.get(r.name)!;
  const reads = inScript.flatMap((r) => frag(r).reads);
  const seen = new Set<string>();
  for (const r of inScript) {
    for (const v of [...frag(r).reads.map((x) => x.name), ...frag(r).keeps]) {
      if (seen.has(v)) throw new Error(`${frag(r).source}: ${v} is already a name of another rule's fragment`);
      seen.add(v);
    }
  }
  let keyIndex = CORE_KEYS;
  const userKeys = userKeysOf(rules, fragments);
  const pairs = (when: 'declined' | 'counted') =>
    inScript
      .flatMap((r) => frag(r).writes)
      .filter((w) => w.when === 'all' || when === 'counted')
      .map((w) => `, ${w.name}Field, ${w.value}`)
      .join('');
  const sections: Record<string, string> = {
    outcomes: `local OUTCOMES = { ${rules.map((r) => `${r.name} = "${r.outcome}"`).join(', ')} }\n-- Each rule's code in a charge record: its index in the registry, base 36.\nlocal CODES = { ${rules.map((r, i) => `${r.name} = "${i.toString(36)}"`).join(', ')} }\n-- Keys per charge the rules read besides its decision and rule state (@userkey).\nlocal USER_KEYS = ${userKeys.length}`,
    setup: inScript
      .map((r) => {
        const keys = frag(r).keys.map((k) => `local KEY_${k} = KEYS[${++keyIndex}]`);
        return [`-- ${r.name} (${frag(r).source})`, ...keys, frag(r).setup].filter((l) => l !== '').join('\n');
      })
      .join('\n\n'),
    read: indent(
      [
        ...reads.map((x) => `local ${x.name}Field = ${x.field}`),
        `local state = rcall("HMGET", stateKey, "p"${reads.map((x) => `, ${x.name}Field`).join('')})`,
        `local pruned${reads.map((x) => `, ${x.name}`).join('')} = ${['state[1]', ...reads.map((_, k) => `state[${k + 2}]`)].join(', ')}`,
      ].join('\n'),
      '  ',
    ),
    check: indent(
      rules
        .map((r) => {
          if (!fragments.has(r.name)) return `-- ${r.name}: decided before the call\nif pre and pre["${r.name}"] then fire("${r.name}", pre["${r.name}"]) end`;
          const f = frag(r);
          return [`-- ${r.name}`, ...(f.keeps.length ? [`local ${f.keeps.join(', ')}`] : []), 'do', indent(f.check, '  '), 'end'].join('\n');
        })
        .join('\n'),
      '  ',
    ),
    prune: inScript
      .filter((r) => frag(r).prune)
      .map((r) => `      elseif ${frag(r).prune!.when} then -- ${r.name}\n${indent(frag(r).prune!.body, '        ')}`)
      .join('\n'),
    'user keys': indent(
      userKeys.map((k, b) => `local KEY_${k.name} = KEYS[firstUserKey + ${b} * charges + i - 1]`).join('\n'),
      '  ',
    ),
    counted: inScript
      .filter((r) => frag(r).counted)
      .map((r) => `    -- ${r.name}\n    do\n${indent(frag(r).counted, '      ')}\n    end`)
      .join('\n'),
    finish: inScript
      .filter((r) => frag(r).finish)
      .map((r) => `-- ${r.name}\ndo\n${indent(frag(r).finish, '  ')}\nend`)
      .join('\n'),
    'write declined': `    rcall("HSET", stateKey, "p", pruned${pairs('declined')})`,
    'write counted': `    rcall("HSET", stateKey, "p", pruned${pairs('counted')})`,
    record: inScript
      .flatMap((r) => frag(r).record.map((e) => `  flags = flags .. (${e}) -- ${r.name}`))
      .join('\n'),
    observed: inScript
      .flatMap((r) => frag(r).observed)
      .map((o) => `    '"${o.name}":' .. (${o.value}) .. ',' ..`)
      .join('\n'),
  };
  const used = new Set<string>();
  const script = core.replace(MARKER, (_, section: string) => {
    used.add(section);
    return sections[section]!;
  });
  const missing = Object.keys(sections).filter((s) => !used.has(s));
  if (missing.length) throw new Error(`the rules script core lacks the marker line(s): ${missing.map((s) => `--- @rules ${s}`).join(', ')}`);
  return script;
}

/** Keys every call takes before the rules' own: the decision stream, the settlement schedule's three, the cases' four. */
export const CORE_KEYS = 8;

/** The keys per charge the fragments read (@userkey), in the order the script takes their blocks. */
function userKeysOf(rules: readonly RuleModule[], fragments: ReadonlyMap<string, Fragment>): { rule: RuleModule; name: string }[] {
  return rules.flatMap((rule) => (fragments.get(rule.name)?.userKeys ?? []).map((name) => ({ rule, name })));
}

/**
 * The assembled script, the keys its fragments read once per call (in the order it takes them after the core's), and
 * the keys per charge they read (one block of n keys each, after the rule-state keys).
 */
export interface RulesScript {
  script: ScriptFile;
  keys: { rule: RuleModule; name: string }[];
  userKeys: { rule: RuleModule; name: string }[];
}

/** The rules script for these rules: the core at `coreUrl`, and each rule's `lua` fragment. */
export function rulesScript(coreUrl: URL, rules: readonly RuleModule[]): RulesScript {
  const fragments = new Map<string, Fragment>();
  for (const rule of rules) {
    if ((rule.lua === undefined) === (rule.decide === undefined)) {
      throw new Error(`rule ${rule.name}: give it either a Lua fragment (decided in the call) or decide() (decided before it)`);
    }
    if (rule.lua) fragments.set(rule.name, parseFragment(readFileSync(rule.lua, 'utf8'), `src/rules/${basename(rule.lua.pathname)}`));
  }
  const m = /^(\w+)-n\.lua$/.exec(basename(coreUrl.pathname));
  if (!m) throw new Error(`the rules script core must be named <name>-n.lua: ${coreUrl.pathname}`);
  const keys = rules.flatMap((rule) => (fragments.get(rule.name)?.keys ?? []).map((name) => ({ rule, name })));
  for (const { rule, name } of keys) {
    if (!rule.keys) throw new Error(`rule ${rule.name}: its fragment reads KEY_${name}, but the module has no keys()`);
  }
  const userKeys = userKeysOf(rules, fragments);
  for (const { rule, name } of userKeys) {
    if (!rule.userKeys) throw new Error(`rule ${rule.name}: its fragment reads KEY_${name} per charge, but the module has no userKeys()`);
  }
  return { script: { name: m[1]!, numberOfKeys: null, lua: assembleRulesScript(readFileSync(coreUrl, 'utf8'), rules, fragments) }, keys, userKeys };
}
