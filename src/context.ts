/**
 * Wires one namespace's collaborators from validated settings: the single place where the object graph is built,
 * so entry points stay thin and tests build exactly what production runs.
 */
import type { Settings } from './config.ts';
import { DeadLetters } from './deadletter/dead-letters.ts';
import { claimLayout, EventClaims } from './decisions/claims.ts';
import { ChargeRecords } from './decisions/charge-record.ts';
import { eventTimeLimits } from './events/event-time.ts';
import { CardHasher } from './events/card.ts';
import type { Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { EventProducer, type ProducerOptions } from './pipeline/producer.ts';
import { chargeHandler, RiskProcessor, type HandlerTable } from './pipeline/risk-processor.ts';
import { QuotaAccounts } from './quota/accounts.ts';
import { Calibrator } from './quota/calibration.ts';
import { quotaHandlers } from './quota/events.ts';
import { QuotaCalibration } from './quota/runs.ts';
import type { RedisClient } from './redis/client.ts';
import { createRedis } from './redis/connection.ts';
import type { RedisTarget } from './redis/target.ts';
import { Lists } from './lists/lists.ts';
import { Keys } from './redis/keys.ts';
import { quitConnections, settlesBy } from './redis/shutdown.ts';
import { ChargeRules } from './rules/charge-rules.ts';
import { LiveRules, RulesPublisher } from './rules/published.ts';
import { CaseQueue } from './cases/case-queue.ts';
import { complaintHandler } from './cases/complaints.ts';
import { SettlementLedger } from './settlement/ledger.ts';
import { ZoneCalendar } from './time/calendar.ts';

export interface Context {
  settings: Settings;
  /** The Redis it is connected to: a URL, or a cluster (src/redis/target.ts). */
  redisTarget: string | RedisTarget;
  /** Commands and scripts (never blocking). */
  redis: RedisClient;
  /** Connection handed to BullMQ queues and workers (it duplicates it for blocking reads). */
  queueConnection: RedisClient;
  keys: Keys;
  calendar: ZoneCalendar;
  rules: ChargeRules;
  /** Keyed card hashing; the producer tokenizes cards before they reach a queue. */
  cards: CardHasher;
  deadLetters: DeadLetters;
  /** The eventId claims (the producers' and the workers' for unclaimed batches). */
  claims: EventClaims;
  /** What Redis keeps of each decided charge (its dedupe), read back. */
  chargeRecords: ChargeRecords;
  /** The lists the list rules read: merchants (merchant_blocklisted), users (user_frozen), cards (card_blocklisted). */
  lists: Lists;
  /** Publishes rules versions (npm run rules); liveRules switches this process's rules to the live one. */
  rulesPublisher: RulesPublisher;
  liveRules: LiveRules;
  processor: RiskProcessor;
  ledger: SettlementLedger;
  /** The review queue: cases that hold review decisions' and complaints' settlements until a person decides. */
  cases: CaseQueue;
  /** Credit quotas: the calibration rule, the accounts, and the runs. */
  calibrator: Calibrator;
  quotaAccounts: QuotaAccounts;
  calibration: QuotaCalibration;
  metrics: Metrics;
  logger: Logger;
  /**
   * A producer into this namespace's queues (clock "wall" unless given); it claims eventIds and dead-letters what it
   * refuses here. Close it when done.
   */
  openProducer(options?: Partial<Omit<ProducerOptions, 'keys' | 'cards'>>): Promise<EventProducer>;
  /**
   * Closes the connections: QUIT, so commands already sent are answered first; at `deadline` (epoch ms) the
   * connections are dropped instead (logged). Resolves whether they closed in time. @defaultValue no deadline
   */
  close(deadline?: number): Promise<boolean>;
}

export function createContext(settings: Settings, redisTarget: string | RedisTarget, logger: Logger, metrics = new Metrics()): Context {
  const { config, configVersion, cardSecret } = settings;
  const redis = createRedis(redisTarget, { name: 'riskmon', logger });
  const queueConnection = createRedis(redisTarget, { name: 'riskmon-queues', logger });
  const keys = new Keys(config.namespace, config.pipeline.shards, config.retention.chargeRecordHashesPerShard);
  const calendar = new ZoneCalendar(config.timezone);
  const cards = new CardHasher(cardSecret);
  const rules = new ChargeRules({ config, configVersion, calendar, cards, keys });
  const deadLetters = new DeadLetters(redis, keys, config.retention.deadLetterMaxLen);
  const liveRules = new LiveRules({ redis, keys, started: settings, rules, metrics, logger: logger.child({ component: 'rules' }) });
  const handlers: HandlerTable = { charge: chargeHandler(redis, rules), ...quotaHandlers({ redis, config, keys, calendar }), complaint: complaintHandler({ redis, config, keys, calendar }) };
  const claims = new EventClaims(redis, keys, claimLayout(config));
  const processor = new RiskProcessor({
    redis,
    keys,
    handlers,
    deadLetters,
    timeLimits: eventTimeLimits(config.events),
    claims,
    cards,
    metrics,
    logger: logger.child({ component: 'risk' }),
    beforeBatch: () => liveRules.refresh(),
  });
  const ledger = new SettlementLedger(redis, keys, calendar, settings.config.settlement.fees, settings.config.cases, settings.config.retention.decisionStreamMaxLen);
  const calibrator = new Calibrator(config, calendar);
  const quotaAccounts = new QuotaAccounts(redis, keys);
  const calibration = new QuotaCalibration({
    redis,
    queueConnection,
    keys,
    config,
    calibrator,
    accounts: quotaAccounts,
    metrics,
    logger: logger.child({ component: 'calibration' }),
  });
  return {
    settings,
    redisTarget,
    redis,
    queueConnection,
    keys,
    calendar,
    rules,
    cards,
    deadLetters,
    claims,
    chargeRecords: new ChargeRecords(redis, keys),
    // Ended entries are kept as far back as an accepted charge may be dated, and a day more.
    lists: new Lists(redis, keys, (config.events.maxAgeDays + 1) * 86_400_000, cards),
    rulesPublisher: new RulesPublisher(redis, keys, settings),
    liveRules,
    processor,
    ledger,
    cases: new CaseQueue(redis, keys, config),
    calibrator,
    quotaAccounts,
    calibration,
    metrics,
    logger,
    openProducer: (options = {}) => EventProducer.open({ connection: queueConnection, config, ...options, keys, cards }),
    async close(deadline = Infinity) {
      await settlesBy(calibration.close(), deadline).catch(() => undefined);
      return quitConnections({ riskmon: redis, 'riskmon-queues': queueConnection }, deadline, logger);
    },
  };
}
