/**
 * Progress of a long command (produce, replay, backtest, calibrate) on stderr: a bar on a terminal; elsewhere (a
 * container's log, a test) a plain line at most every 10 s and one at the end, so the output stays small.
 */
import { SingleBar } from 'cli-progress';

/** What a long command's --help says of its progress. */
export const PROGRESS_NOTE = 'Progress goes to stderr: a bar on a terminal; elsewhere a plain line at most every 10 s, and one at the end.';

/** Where progress goes: process.stderr by default; a terminal when isTTY. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressDisplayOptions<F extends string> {
  /** What each line starts with: the command ("produce") or the run ("backtest: baseline"). */
  label: string;
  total: number;
  /** What the count counts, shown after it: "12/50 read". */
  counted: string;
  /** Other figures, in this order after the count: "30 sent". */
  fields?: readonly F[];
  /** The count already reached when the display starts (a resumed run): the rate counts only what comes after. @defaultValue 0 */
  start?: number;
  /** Show nothing (--json: stdout is for the JSON and stderr for errors). */
  quiet?: boolean;
  /** @defaultValue process.stderr */
  stream?: ProgressStream;
  /** Off a terminal, the least time between two plain lines. @defaultValue 10000 */
  plainEveryMs?: number;
}

export interface ProgressDisplay<F extends string> {
  /** How often the caller should report: often enough for a smooth bar, or to keep a plain line's period. */
  readonly everyMs: number;
  update(count: number, fields: Record<F, number>): void;
  /** Shows the last figures (off a terminal, as a final line) and ends the display. */
  stop(): void;
}

export function progressDisplay<const F extends string = never>(options: ProgressDisplayOptions<F>): ProgressDisplay<F> {
  const { label, total, counted } = options;
  const fields = options.fields ?? [];
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { everyMs: 60_000, update: () => undefined, stop: () => undefined };
  const startedAt = performance.now();
  const startCount = options.start ?? 0;
  const rateOf = (count: number) => {
    const ms = performance.now() - startedAt;
    return ms > 0 ? Math.round(((count - startCount) * 1000) / ms) : 0;
  };

  if (!stream.isTTY) {
    const plainEveryMs = options.plainEveryMs ?? 10_000;
    let lastLineAt = startedAt;
    let unshown: string | undefined;
    const line = (count: number, values: Record<F, number>) =>
      `${label}: ${count}/${total} ${counted}${fields.map((f) => `, ${values[f]} ${f}`).join('')}, ${rateOf(count)}/s\n`;
    return {
      // Reports every second keep the lines' period within a second of plainEveryMs.
      everyMs: Math.min(1_000, plainEveryMs),
      update(count, values) {
        unshown = line(count, values);
        if (performance.now() - lastLineAt < plainEveryMs) return;
        lastLineAt = performance.now();
        stream.write(unshown);
        unshown = undefined;
      },
      stop() {
        if (unshown) stream.write(unshown);
        unshown = undefined;
      },
    };
  }

  const bar = new SingleBar({
    format: `${label} {bar} {percentage}% | {value}/{total} ${counted}${fields.map((f) => ` | {${f}} ${f}`).join('')} | {rate}/s | ETA {eta_formatted}`,
    barsize: 30,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    hideCursor: true,
    etaBuffer: 50,
    stream: stream as NodeJS.WritableStream,
  });
  bar.start(total, startCount, { ...Object.fromEntries(fields.map((f) => [f, 0])), rate: 0 });
  return {
    everyMs: 100,
    update: (count, values) => bar.update(count, { ...values, rate: rateOf(count) }),
    stop: () => bar.stop(),
  };
}
