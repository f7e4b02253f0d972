/** Every command parses its numbers with wholeNumberOption (src/cli.ts): one rule, one message. */
import { describe, expect, it } from 'vitest';
import { UsageError, wholeNumberOption } from '../../src/cli.ts';

describe('wholeNumberOption', () => {
  it('takes digits, with underscores between them, inside its bounds; the fallback when absent', () => {
    expect(wholeNumberOption('count', undefined, 7)).toBe(7);
    expect(wholeNumberOption('count', '200_000', 7)).toBe(200_000);
    expect(wholeNumberOption('seed', '0', 7, { min: 0 })).toBe(0);
    expect(wholeNumberOption('workers', '64', 1, { max: 64 })).toBe(64);
  });

  it.each(['', ' 1', '1 ', '1.5', '1e3', '0x10', '-1', '+1', '_1', '1__0', '1_', 'NaN', 'Infinity', '9007199254740993'])('refuses %j as a usage error naming the option', (text) => {
    expect(() => wholeNumberOption('count', text, 7)).toThrow(UsageError);
    expect(() => wholeNumberOption('count', text, 7)).toThrow(/^--count takes a whole number ≥ 1, got /);
  });

  it('says the range when there is a maximum', () => {
    expect(() => wholeNumberOption('workers', '65', 1, { max: 64 })).toThrow('--workers takes a whole number from 1 to 64, got "65"');
    expect(() => wholeNumberOption('count', '0', 1)).toThrow('--count takes a whole number ≥ 1, got "0"');
  });
});
