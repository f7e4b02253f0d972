/** produce's file feed reads lines with the byte bound: a huge line is one rejection, the lines around it go through. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { countLines, feed } from '../../src/pipeline/feed.ts';
import { dropContext, testContext } from '../helpers/context.ts';

const dir = mkdtempSync(join(tmpdir(), 'riskmon-feed-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a 5 MB line among valid ones (CRLF, no newline at the end): one dead letter, masked and short; the rest sent', async () => {
  const context = testContext();
  try {
    const at = new Date().toISOString();
    const valid = (i: number) => JSON.stringify({ type: 'charge', eventId: `fl-${i}`, userId: `u${i}`, merchantId: 'm1', cardId: `c1234567${i}`, amount: 100, occurredAt: at });
    const path = join(dir, 'feed.ndjson');
    const long = `{"type":"charge","cardId":"4111111111111111","pad":"${'x'.repeat(5 * 1024 * 1024)}"}`;
    writeFileSync(path, `${valid(1)}\r\n${long}\r\n${valid(2)}\n${valid(3)}`);
    expect(await countLines(path)).toBe(4);

    const max = context.settings.config.pipeline.maxLineBytes;
    const summary = await feed({
      source: { kind: 'file', path },
      connection: context.queueConnection,
      keys: context.keys,
      config: context.settings.config,
      clock: 'replay',
      cards: context.cards,
      deadLetters: context.deadLetters,
    });
    expect(summary).toMatchObject({ sent: 3, rejected: 1, rejectReasons: [{ reason: `line longer than ${max} bytes`, count: 1 }] });
    const [letter, ...others] = await context.deadLetters.list();
    expect(others).toEqual([]);
    expect(letter).toMatchObject({ source: `produce:${summary.runId}:2`, reason: `line longer than ${max} bytes` });
    expect(letter!.raw).toMatch(new RegExp(`^\\{"type":"charge","cardId":"\\*{4}1111","pad":"x+… \\(${Buffer.byteLength(long)} bytes\\)$`));
    expect(letter!.raw.length).toBeLessThan(400);
  } finally {
    await dropContext(context);
  }
});
