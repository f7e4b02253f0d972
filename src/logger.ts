/**
 * pino JSON logs; one child logger per component. Card fields are redacted wherever they appear, and pretty
 * output is used on a terminal outside production.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

const REDACT = ['cardId', '*.cardId', '*.*.cardId', 'event.cardId', 'events[*].cardId', 'password', '*.password'];

export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? (Boolean(process.stdout.isTTY) && process.env.NODE_ENV !== 'production');
  return pino({
    level,
    base: { service: 'riskmon' },
    redact: { paths: REDACT, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } } : {}),
  });
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
