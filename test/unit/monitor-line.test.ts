/** The MONITOR line parser (test/helpers/monitor-line.ts); lines below are as Redis 7.0.15 printed them. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MonitorLineError, parseMonitorLine, reprBytes } from '../helpers/monitor-line.ts';

const text = (line: string) => parseMonitorLine(line).args.map((a) => a.toString('latin1'));

describe('parseMonitorLine', () => {
  it('reads the time, the database, the source and the arguments', () => {
    expect(parseMonitorLine('1796236016.921121 [0 127.0.0.1:54102] "evalsha" "2bab3b661081db58bd2341920e0ba7cf5dc77b25" "1" "cnt"')).toEqual({
      time: '1796236016.921121',
      db: 0,
      source: '127.0.0.1:54102',
      args: ['evalsha', '2bab3b661081db58bd2341920e0ba7cf5dc77b25', '1', 'cnt'].map((s) => Buffer.from(s)),
    });
    expect(parseMonitorLine('1796236016.921140 [0 lua] "incr" "cnt"').source).toBe('lua');
    expect(parseMonitorLine('1796236016.921140 [15 unix:/tmp/redis.sock] "ping"')).toMatchObject({ db: 15, source: 'unix:/tmp/redis.sock' });
    // An IPv6 peer is written in brackets inside the brackets.
    expect(parseMonitorLine('1796236016.921140 [0 [::1]:6379] "get" "k"')).toMatchObject({ source: '[::1]:6379', args: [Buffer.from('get'), Buffer.from('k')] });
  });

  it('undoes every escape: quotes, backslashes, control characters and \\x bytes', () => {
    expect(text('1796236016.912528 [0 lua] "set" "k\\"1" "a\\\\b\\"c"')).toEqual(['set', 'k"1', 'a\\b"c']);
    expect(text('1.2 [0 lua] "x" "\\n\\r\\t\\a\\b"')).toEqual(['x', '\n\r\t\x07\b']);
    expect(parseMonitorLine('1.2 [0 lua] "x" "\\x00\\xe4\\xb8\\xAD\\xff"').args[1]).toEqual(Buffer.from([0, 0xe4, 0xb8, 0xad, 0xff]));
    // What ioredis's own parser gets wrong: a quote, space, quote inside one argument, and a trailing backslash.
    expect(text('1.2 [0 lua] "set" "a\\" \\"b" "c\\\\"')).toEqual(['set', 'a" "b', 'c\\']);
    expect(text('1.2 [0 lua] "set" "" ""')).toEqual(['set', '', '']);
  });

  it('keeps a byte Redis did not escape as that byte', () => {
    expect(parseMonitorLine('1.2 [0 lua] "get" "\xe4"').args[1]).toEqual(Buffer.from([0xe4]));
  });

  it('reads back any bytes written the way MONITOR writes them', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 6 }), (args) => {
        const line = `1796236016.000001 [3 127.0.0.1:1] ${args.map((a) => `"${reprBytes(a)}"`).join(' ')}`;
        expect(parseMonitorLine(line).args).toEqual(args.map((a) => Buffer.from(a)));
      }),
    );
  });

  it('refuses what is not a MONITOR line, naming the problem', () => {
    expect(() => parseMonitorLine('OK')).toThrow(MonitorLineError);
    expect(() => parseMonitorLine('1.2 [0 lua] ')).toThrow(/expected "|no command/);
    expect(() => parseMonitorLine('1.2 [0 lua] "get" "k')).toThrow(/unterminated/);
    expect(() => parseMonitorLine('1.2 [0 lua] "get" "k\\q"')).toThrow(/unknown escape \\q/);
    expect(() => parseMonitorLine('1.2 [0 lua] "get" "k\\x4"')).toThrow(/bad \\x escape/);
    expect(() => parseMonitorLine('1.2 [0 lua] "get""k"')).toThrow(/expected a space/);
    expect(() => parseMonitorLine('1.2 [0 lua] "get" ')).toThrow(/trailing space/);
    expect(() => parseMonitorLine('1.2 [0 lua] get')).toThrow(/expected " at column 13/);
  });
});
