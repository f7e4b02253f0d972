/** The shared progress display (src/progress.ts) off a terminal: a plain line at most every interval, and one at the end. */
import { describe, expect, it } from 'vitest';
import { progressDisplay } from '../../src/progress.ts';

/** A stream that is not a terminal, as stderr is in a container or a test; it keeps what is written. */
function plainStream(): { isTTY: false; lines: string[]; write(text: string): boolean } {
  return {
    isTTY: false,
    lines: [],
    write(text) {
      this.lines.push(text);
      return true;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('progressDisplay off a terminal', () => {
  it('writes a plain line at most every interval, and the last figures at the end', async () => {
    const stream = plainStream();
    const display = progressDisplay({ label: 'replay', total: 100, counted: 'done', fields: ['read'], stream, plainEveryMs: 100 });
    const started = performance.now();
    for (let n = 1; n <= 30; n++) {
      display.update(n, { read: n * 2 });
      await sleep(10);
    }
    const elapsed = performance.now() - started;
    // Lines only once an interval has passed since the last one: at most elapsed / interval of them.
    expect(stream.lines.length).toBeGreaterThanOrEqual(1);
    expect(stream.lines.length).toBeLessThanOrEqual(Math.floor(elapsed / 100));
    for (const line of stream.lines) expect(line).toMatch(/^replay: \d+\/100 done, \d+ read, \d+\/s\n$/);

    display.stop();
    expect(stream.lines.at(-1)).toMatch(/^replay: 30\/100 done, 60 read, \d+\/s\n$/);
    // Nothing more once stopped, and nothing twice.
    const written = stream.lines.length;
    display.stop();
    expect(stream.lines).toHaveLength(written);
  });

  it('writes no final line when the last figures were already written', () => {
    const stream = plainStream();
    const display = progressDisplay({ label: 'produce', total: 5, counted: 'read', fields: ['sent', 'rejected'], stream, plainEveryMs: 0 });
    display.update(5, { sent: 4, rejected: 1 });
    display.stop();
    expect(stream.lines).toEqual([expect.stringMatching(/^produce: 5\/5 read, 4 sent, 1 rejected, \d+\/s\n$/)]);
  });

  it('asks for reports often enough to keep its period, and says nothing when quiet', () => {
    expect(progressDisplay({ label: 'x', total: 1, counted: 'done', stream: plainStream() }).everyMs).toBeLessThanOrEqual(1_000);
    const stream = plainStream();
    const quiet = progressDisplay({ label: 'x', total: 1, counted: 'done', quiet: true, stream, plainEveryMs: 0 });
    quiet.update(1, {});
    quiet.stop();
    expect(stream.lines).toEqual([]);
  });

  it('counts the rate from the start figure of a resumed run', async () => {
    const stream = plainStream();
    const display = progressDisplay({ label: 'calibrate', total: 1_000, counted: 'calibrated', start: 900, stream });
    await sleep(100);
    display.update(1_000, {});
    display.stop();
    // 100 accounts in about 0.1 s: about 1,000/s, not the 10,000/s that counting the 900 from before would give.
    const rate = Number(/, (\d+)\/s\n$/.exec(stream.lines[0]!)?.[1]);
    expect(rate).toBeGreaterThan(300);
    expect(rate).toBeLessThan(1_100);
  });
});
