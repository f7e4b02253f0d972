/**
 * Wires one namespace's collaborators from validated settings: the single place where the object graph is built,
 * so entry points stay thin and tests build exactly what production runs.
 */
import type { Redis } from 'ioredis';
import type { Settings } from './config.ts';
import { DeadLetters } from './deadletter/dead-letters.ts';
import { CardHasher } from './events/card.ts';
import type { Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { chargeHandler, RiskProcessor, type HandlerTable } from './pipeline/risk-processor.ts';
import { createRedis } from './redis/connection.ts';
import { Keys } from './redis/keys.ts';
import { ChargeRules } from './rules/charge-rules.ts';
import { SettlementLedger } from './settlement/ledger.ts';
import { ZoneCalendar } from './time/calendar.ts';

export interface Context {
  settings: Settings;
  redisUrl: string;
  /** Commands and scripts (never blocking). */
  redis: Redis;
  /** Connection handed to BullMQ queues and workers (it duplicates it for blocking reads). */
  queueConnection: Redis;
  keys: Keys;
  calendar: ZoneCalendar;
  rules: ChargeRules;
  /** Keyed card hashing; the producer tokenizes cards before they reach a queue. */
  cards: CardHasher;
  deadLetters: DeadLetters;
  processor: RiskProcessor;
  ledger: SettlementLedger;
  metrics: Metrics;
  logger: Logger;
  close(): Promise<void>;
}

export function createContext(settings: Settings, redisUrl: string, logger: Logger, metrics = new Metrics()): Context {
  const { config, configVersion, cardSecret } = settings;
  const redis = createRedis(redisUrl, { name: 'riskmon', logger });
  const queueConnection = createRedis(redisUrl, { name: 'riskmon-queues', logger });
  const keys = new Keys(config.namespace);
  const calendar = new ZoneCalendar(config.timezone);
  const cards = new CardHasher(cardSecret);
  const rules = new ChargeRules({ config, configVersion, calendar, cards, keys });
  const deadLetters = new DeadLetters(redis, keys, config.retention.deadLetterMaxLen);
  const handlers: HandlerTable = { charge: chargeHandler(redis, rules) };
  const processor = new RiskProcessor({
    redis,
    handlers,
    deadLetters,
    metrics,
    logger: logger.child({ component: 'risk' }),
    maxLineBytes: config.pipeline.maxLineBytes,
  });
  const ledger = new SettlementLedger(redis, keys, calendar);
  return {
    settings,
    redisUrl,
    redis,
    queueConnection,
    keys,
    calendar,
    rules,
    cards,
    deadLetters,
    processor,
    ledger,
    metrics,
    logger,
    async close() {
      await Promise.allSettled([redis.quit(), queueConnection.quit()]);
    },
  };
}
