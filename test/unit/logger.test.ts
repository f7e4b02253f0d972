/** Card data never reaches a log line or the queue dashboard. */
import { describe, expect, it } from 'vitest';
import { scrubCardData } from '../../src/events/scrub.ts';
import { luhnCheckDigit } from '../../src/events/synthetic.ts';
import { createLogger } from '../../src/logger.ts';

const PAN = '6222020000000001';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => (raw.push(s), lines.push(JSON.parse(s))) } });
  return { logger, lines, raw };
}

describe('logs', () => {
  it('writes JSON lines with the component of each child logger', () => {
    const { logger, lines } = capture();
    logger.child({ component: 'risk-worker' }).info({ queue: 'risk-3' }, 'batch done');
    logger.child({ component: 'settlement' }).warn('late');
    expect(lines).toMatchObject([
      { level: 30, service: 'riskmon', component: 'risk-worker', queue: 'risk-3', msg: 'batch done' },
      { level: 40, service: 'riskmon', component: 'settlement', msg: 'late' },
    ]);
  });

  it('redacts card fields and masks card numbers anywhere in a line', () => {
    const { logger, raw, lines } = capture();
    const log = logger.child({ component: 'risk' });
    log.info({ cardId: PAN, event: { cardId: PAN, amount: 100 } }, 'event');
    log.info({ events: [{ cardId: PAN }, { cardId: PAN }] }, 'batch');
    log.info({ a: { b: { c: { d: { cardId: PAN } } } } }, 'deep');
    log.info({ raw: `{"cardId":"${PAN}"}`, note: 'card 6222 0200 0000 0001 seen' }, `message about ${PAN}`);
    log.info('formatted %s', PAN);
    log.error({ err: new Error(`bad card ${PAN}`) }, 'failed');
    log.error(new Error(`boom ${PAN}`));
    log.info({ dashboard: { password: 'hunter2-hunter2' } }, 'login');
    for (const line of raw) {
      expect(line).not.toContain(PAN);
      expect(line).not.toContain('6222 0200 0000 0001');
    }
    expect(raw.join('')).not.toContain('hunter2');
    expect(lines[0]).toMatchObject({ cardId: '[redacted]', event: { cardId: '[redacted]', amount: 100 } });
    expect(lines[2]).toMatchObject({ a: { b: { c: { d: { cardId: '****0001' } } } } });
    expect(lines[3]).toMatchObject({ note: 'card [masked …0001] seen', msg: 'message about [masked …0001]' });
    expect(lines[5]).toMatchObject({ err: { type: 'Error', message: 'bad card [masked …0001]' } });
    expect(lines[6]).toMatchObject({ msg: 'boom [masked …0001]' });
  });
});

describe('card numbers however written', () => {
  const CARD = `622202000000001${luhnCheckDigit('622202000000001')}`;
  const group = (sep: string) => CARD.replace(/(\d{4})(?=\d)/g, `$1${sep}`);
  const FORMS = [group('.'), group('  '), group('-'), group(' - '), CARD.replace(/\d/g, (c) => String.fromCharCode(0xff10 + Number(c))), group('\u200b')];
  /** The text without separators, after NFKC: a card in any of FORMS shows as its plain digits. */
  const digitsOf = (text: string) => text.normalize('NFKC').replace(/[\s.\-\u200b]/g, '');

  it('never reach a log line: messages, fields, key names, numbers, format arguments, errors', () => {
    const { logger, raw } = capture();
    for (const form of FORMS) {
      logger.info({ note: form, [form]: 1, nested: { userId: form } }, `seen ${form}`);
      logger.info('formatted %s', form);
      logger.error({ err: new Error(`bad ${form}`) }, 'failed');
    }
    logger.info({ userId: Number(CARD), enqueuedAt: 1795252365582 }, 'numbers');
    logger.info('as a number %s', Number(CARD));
    for (const line of raw) expect(digitsOf(line)).not.toContain(CARD.slice(0, 12));
    expect(raw.at(-2)).toContain('"enqueuedAt":1795252365582');
  });

  it('are masked in what the dashboard shows of a job', () => {
    const job = { events: FORMS.map((f) => ({ type: 'charge', userId: f, cardId: f, note: f, [f]: true })), n: Number(CARD), at: 1795252365582 };
    const shown = JSON.stringify(scrubCardData(job));
    expect(digitsOf(shown)).not.toContain(CARD.slice(0, 12));
    expect(shown).toContain(`"cardId":"****${CARD.slice(-4)}"`);
    expect(shown).toContain('"at":1795252365582');
  });
});

describe('scrubCardData', () => {
  it('keeps the last four of card fields, masks digit runs, and leaves the input untouched', () => {
    const job = { v: 1, events: [{ type: 'charge', cardId: PAN, amount: 123456789012, note: `x ${PAN}` }], enqueuedAt: 1795252365582 };
    const copy = structuredClone(job);
    expect(scrubCardData(job)).toEqual({
      v: 1,
      events: [{ type: 'charge', cardId: '****0001', amount: 123456789012, note: 'x [masked …0001]' }],
      enqueuedAt: 1795252365582,
    });
    expect(job).toEqual(copy);
  });

  it('keeps an error an error of its class', () => {
    class RedisDown extends Error {
      override name = 'RedisDown';
    }
    const scrubbed = scrubCardData(new RedisDown(`card ${PAN}`)) as Error;
    expect(scrubbed).toBeInstanceOf(RedisDown);
    expect(scrubbed.message).toBe('card [masked …0001]');
    expect(scrubbed.stack).not.toContain(PAN);
  });
});
