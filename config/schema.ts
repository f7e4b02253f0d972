/**
 * The configuration contract. Every threshold the rules, settlement and pipeline use lives here,
 * validated once at start-up; a bad value stops the process with the path and the reason.
 */
import { z } from 'zod';
import { IANAZone } from 'luxon';

/** "HH:MM" local wall-clock time, turned into seconds after midnight. */
const clockTime = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day as "HH:MM" (00:00–23:59)')
  .transform((s) => Number(s.slice(0, 2)) * 3600 + Number(s.slice(3, 5)) * 60);

const fen = z.number().int().positive();

/** luxon does not throw on a misspelled zone, so the zone is checked explicitly. */
const ianaZone = z.string().refine((zone) => IANAZone.isValidZone(zone), {
  message: 'not a valid IANA time zone (for example "Asia/Shanghai")',
});

export const namespaceName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'namespace: 1–64 characters of A–Z, a–z, 0–9, "_" or "-"');

export const configSchema = z
  .object({
    /** Calendar zone for nights, days and settlement dates. @defaultValue "Asia/Shanghai" */
    timezone: ianaZone,
    /** Key and queue prefix `rm:<namespace>`; replays use their own. @defaultValue "live" */
    namespace: namespaceName,
    /** "production" refuses the development card secret. @defaultValue "development" */
    environment: z.enum(['development', 'test', 'production']),
    rules: z.strictObject({
      sameCardBurst: z.strictObject({
        /** Window (t − window, t] in seconds. @defaultValue 600 */
        windowSeconds: z.number().int().min(1).max(86_400),
        /** Charges in the window (this one included) that trigger review. @defaultValue 3 */
        minCount: z.number().int().min(2).max(1_000),
        /** How late (by event time) a charge may arrive and still see its whole window. @defaultValue 3600 */
        lateToleranceSeconds: z.number().int().min(0).max(7 * 86_400),
      }),
      nightLargeAmount: z.strictObject({
        /** Start of the night window, inclusive. @defaultValue "23:00" */
        from: clockTime,
        /** End of the night window, exclusive; may wrap past midnight. @defaultValue "02:00" */
        to: clockTime,
        /** Amounts at or above this (fen) are declined at night. @defaultValue 500000 */
        minAmountFen: fen,
      }),
      userDailyCap: z.strictObject({
        /** Most a user may charge (not declined) in one local day, fen, inclusive. @defaultValue 5000000 */
        capFen: fen,
      }),
    }),
    settlement: z.strictObject({
      /** Local time on the settlement day. @defaultValue "03:00" */
      settleTime: clockTime,
      /** T+N. @defaultValue 1 */
      delayDays: z.number().int().min(0).max(30),
      /** Extra hold for transactions sent to review. @defaultValue 48 */
      holdHours: z.number().int().min(0).max(24 * 30),
      /** How often the settlement worker releases due transactions. @defaultValue 5 */
      tickSeconds: z.number().int().min(1).max(3_600),
      /** Transactions released per round trip. @defaultValue 1000 */
      batchSize: z.number().int().min(1).max(10_000),
    }),
    pipeline: z.strictObject({
      /** Ordered shard queues users are partitioned over. Change only with empty queues. @defaultValue 8 */
      shards: z.number().int().min(1).max(256),
      /** Events per queue job. @defaultValue 500 */
      maxBatch: z.number().int().min(1).max(10_000),
      /** How long a producer waits to fill a batch, ms. @defaultValue 5 */
      lingerMs: z.number().int().min(0).max(1_000),
      /** Worker lock on a job, ms; a crashed worker's job is redelivered after it. @defaultValue 30000 */
      lockDurationMs: z.number().int().min(1_000).max(600_000),
      /** How often workers look for jobs whose worker died, ms. @defaultValue 5000 */
      stalledIntervalMs: z.number().int().min(500).max(600_000),
      /** Longest accepted input line, bytes. @defaultValue 16384 */
      maxLineBytes: z.number().int().min(256).max(1_048_576),
      /** On SIGTERM, how long in-flight batches may take before the process exits anyway, ms. @defaultValue 15000 */
      shutdownGraceMs: z.number().int().min(100).max(600_000),
    }),
    retention: z.strictObject({
      /** Decision records (and the eventId dedupe they provide), days. @defaultValue 35 */
      decisionDays: z.number().int().min(4).max(3_650),
      /** Approximate cap on the decision stream. @defaultValue 1000000 */
      decisionStreamMaxLen: z.number().int().min(1_000),
      /** Approximate cap on the dead-letter stream. @defaultValue 100000 */
      deadLetterMaxLen: z.number().int().min(100),
      /** Per-user day totals kept, days. @defaultValue 40 */
      dayTotalsDays: z.number().int().min(2).max(400),
    }),
  })
  .strict();

/** The configuration as written in JSON (before transforms). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated configuration: times of day are seconds after midnight. */
export type RiskmonConfig = z.output<typeof configSchema>;
