/**
 * pino JSON logs; one child logger per component (`logger.child({ component })`). Card data never reaches a log
 * line: card fields are redacted by path, and every logged object and message has card numbers masked. Pretty
 * output is used on a terminal outside production.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { maskCardNumbers } from './events/card.ts';
import { isCardLikeNumber, scrubCardData } from './events/scrub.ts';

export type { Logger } from 'pino';

const REDACT = ['cardId', '*.cardId', '*.*.cardId', 'event.cardId', 'events[*].cardId', 'password', '*.password'];

export interface LoggerOptions {
  /** @defaultValue LOG_LEVEL, else "info" */
  level?: string;
  /** @defaultValue true on a terminal unless NODE_ENV is "production" */
  pretty?: boolean;
  /** Where JSON lines go (tests); disables pretty output. @defaultValue stdout */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = !options.destination && (options.pretty ?? (Boolean(process.stdout.isTTY) && process.env.NODE_ENV !== 'production'));
  const pinoOptions = {
    level,
    base: { service: 'riskmon' },
    redact: { paths: REDACT, censor: '[redacted]' },
    formatters: { log: (object: Record<string, unknown>) => scrubCardData(object) as Record<string, unknown> },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map(scrubArg));
      },
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } } : {}),
  };
  return options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}

/** A log call's argument: messages and format arguments masked (a card as a number too), errors scrubbed. */
function scrubArg(a: unknown): unknown {
  if (typeof a === 'string') return maskCardNumbers(a);
  if (a instanceof Error) return scrubCardData(a);
  if ((typeof a === 'number' || typeof a === 'bigint') && isCardLikeNumber(a)) return maskCardNumbers(String(a));
  return a;
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
