/** Every command answers --help (usage, every option, an example; exit 0) and refuses an unknown option (exit 2). */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { runTool } from '../helpers/cli.ts';

// Every npm script that runs a command-line tool from scripts/ (found in package.json, so a new one is covered).
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
const commands = Object.entries(pkg.scripts)
  .map(([name, line]) => ({ name, file: /^tsx scripts\/([\w-]+)\.ts$/.exec(line)?.[1] }))
  .filter((c): c is { name: string; file: string } => c.file !== undefined);

describe('command-line help', () => {
  test('finds the commands', () => {
    expect(commands.map((c) => c.name)).toEqual(expect.arrayContaining(['demo', 'replay', 'produce', 'settlement', 'dead-letter', 'decisions', 'calibrate', 'quota', 'bench', 'chaos']));
  });

  test.each(commands)('npm run $name -- --help', async ({ name, file }) => {
    const r = await runTool(file, ['--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`usage: npm run ${name} -- `);
    expect(r.stdout).toMatch(/\noptions:\n/);
    expect(r.stdout).toContain('  --help ');
    expect(r.stdout).toMatch(new RegExp(`\\nexamples?:\\n  npm run ${name.replace(':', '\\:')}\\b`));
    // Every option the tool declares is described (the table the parser reads is the one the help prints).
    const source = readFileSync(new URL(`../../scripts/${file}.ts`, import.meta.url), 'utf8');
    const options = source.slice(source.indexOf('options: {')).match(/^\s+'?([a-z][\w-]*)'?: (?:\{ type|[A-Z_]+_OPTION)/gm) ?? [];
    expect(options.length).toBeGreaterThan(0);
    for (const o of options) expect(r.stdout).toContain(`--${o.trim().split(':')[0]!.replace(/'/g, '')}`);
  });

  test.each(commands.filter((c) => ['replay', 'settlement', 'decisions', 'bench', 'produce'].includes(c.name)))(
    'npm run $name -- --no-such-option is a usage error',
    async ({ name, file }) => {
      const r = await runTool(file, ['--no-such-option']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${name}: Unknown option '--no-such-option'`);
      expect(r.stderr).toContain(`usage: npm run ${name} -- `);
      expect(r.stderr).toContain(`npm run ${name} -- --help lists every option`);
    },
  );
});
