import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { countLines, readLines, type LineItem } from '../../src/events/lines.ts';

const dir = mkdtempSync(join(tmpdir(), 'riskmon-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* chunked(bytes: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const c of [...new Set(cuts.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b)) {
    yield bytes.subarray(at, c);
    at = c;
  }
  yield bytes.subarray(at);
}

async function collect(input: string | AsyncIterable<Buffer>, maxLineBytes: number, prefixBytes?: number): Promise<LineItem[]> {
  const out: LineItem[] = [];
  for await (const item of readLines(input, { maxLineBytes, prefixBytes })) out.push(item);
  return out;
}

/** The lines as a plain split says they are: "\n" ends a line, a "\r" before it is dropped. */
function reference(bytes: Buffer, maxLineBytes: number): { kind: 'text' | 'too_long'; text: string; bytes: number }[] {
  const pieces: Buffer[] = [];
  let at = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, at)) {
    pieces.push(bytes.subarray(at, i));
    at = i + 1;
  }
  if (at < bytes.length) pieces.push(bytes.subarray(at));
  return pieces.map((p) => {
    const body = p[p.length - 1] === 0x0d ? p.subarray(0, -1) : p;
    return { kind: body.length > maxLineBytes ? 'too_long' : 'text', text: body.toString('utf8'), bytes: body.length };
  });
}

const lineText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('', '\r', '{"a":"é€😀"}', '4111 1111 1111 1111', 'x'.repeat(40), '中'.repeat(20)),
);

describe('readLines: byte-bounded lines', () => {
  test('the lines of a plain split, for any chunking, line ends and multi-byte text', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(lineText, { maxLength: 12 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.integer({ min: 0, max: 48 }),
        async (lines, end, lastEnds, cuts, max) => {
          const bytes = Buffer.from(lines.join(end) + (lastEnds && lines.length ? end : ''), 'utf8');
          const got = await collect(chunked(bytes, cuts), max, 16);
          const want = reference(bytes, max);
          expect(got.map((g) => g.line)).toEqual(want.map((_, i) => i + 1));
          got.forEach((g, i) => {
            const w = want[i]!;
            expect(g.kind).toBe(w.kind);
            if (g.kind === 'text') expect(g.text).toBe(w.text);
            else {
              expect(g.bytes).toBe(w.bytes);
              expect(Buffer.byteLength(g.prefix)).toBeLessThanOrEqual(16);
              expect(w.text.startsWith(g.prefix)).toBe(true);
            }
          });
        },
      ),
      { numRuns: 1_000 },
    );
  });

  test('the bound is on bytes without the line end: exactly maxLineBytes passes, one more does not', async () => {
    const text = 'é'.repeat(5); // 10 bytes
    for (const end of ['\n', '\r\n']) {
      const bytes = Buffer.from(`${text}${end}${text}x${end}`);
      // Cut between the "\r" and the "\n" too.
      const got = await collect(chunked(bytes, [11, 12, 13]), 10);
      expect(got).toEqual([
        { line: 1, kind: 'text', text },
        { line: 2, kind: 'too_long', bytes: 11, prefix: text + 'x' },
      ]);
    }
  });

  test('a too-long prefix ends on a whole character and before a trailing digit run', async () => {
    expect(await collect(chunked(Buffer.from('ab€€€€\n'), [2, 5]), 4, 7)).toEqual([{ line: 1, kind: 'too_long', bytes: 14, prefix: 'ab€' }]);
    expect(await collect(chunked(Buffer.from('{"cardId":"4111 1111 1111 1111"}\r\n'), [3]), 4, 20)).toEqual([
      { line: 1, kind: 'too_long', bytes: 32, prefix: '{"cardId":"' },
    ]);
    const wide = await collect(chunked(Buffer.from('{"cardId":"４１１１ １１１１ １１１１ １１１１"}'), [20]), 8, 24);
    expect(wide).toEqual([{ line: 1, kind: 'too_long', bytes: Buffer.byteLength('{"cardId":"４１１１ １１１１ １１１１ １１１１"}'), prefix: '{"cardId":"' }]);
  });

  test('an empty input has no lines; a file ending without a line end keeps its last line', async () => {
    expect(await collect(chunked(Buffer.alloc(0), []), 10)).toEqual([]);
    expect(await collect(chunked(Buffer.from('\n'), []), 10)).toEqual([{ line: 1, kind: 'text', text: '' }]);
    expect(await collect(chunked(Buffer.from('a\r\nb'), [2]), 10)).toEqual([
      { line: 1, kind: 'text', text: 'a' },
      { line: 2, kind: 'text', text: 'b' },
    ]);
  });

  test('countLines counts the lines readLines reads, from a file', async () => {
    for (const [i, content] of ['', 'a', 'a\n', 'a\nb', '\n\n', 'x'.repeat(200_000) + '\r\ny\r\n'].entries()) {
      const path = join(dir, `c${i}.ndjson`);
      writeFileSync(path, content);
      expect(await countLines(path)).toBe((await collect(path, 100)).length);
    }
  });
});
