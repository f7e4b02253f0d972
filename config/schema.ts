/**
 * The configuration contract. Every threshold the rules, settlement and pipeline use lives here,
 * validated once at start-up; a bad value stops the process with the path and the reason.
 */
import { z } from 'zod';
import { IANAZone } from 'luxon';
import { rulesConfigSchema } from '../src/rules/registry.ts';
import { clockTime, fen } from './fields.ts';


/** luxon does not throw on a misspelled zone, so the zone is checked explicitly. */
const ianaZone = z.string().refine((zone) => IANAZone.isValidZone(zone), {
  message: 'not a valid IANA time zone (for example "Asia/Shanghai")',
});

export const namespaceName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'namespace: 1–64 characters of A–Z, a–z, 0–9, "_" or "-"');

const localDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date "YYYY-MM-DD"')
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), {
    message: 'not a calendar date',
  });

const percent = (min: number, max: number) => z.number().int().min(min).max(max);

const band = z
  .strictObject({
    /** Lowest quota of the channel, fen. */
    minFen: fen,
    /** Highest quota of the channel, fen. */
    maxFen: fen.max(1_000_000_000),
  })
  .refine((b) => b.minFen <= b.maxFen, { message: 'minFen must not exceed maxFen' });

/** Credit quotas and their semi-monthly calibration (src/quota/). */
const calibrationSchema = z.strictObject({
  /** Days of the month a run happens, at 00:00 local (cron "0 0 <days> * *"). @defaultValue [1, 15] */
  runDays: z
    .array(z.number().int().min(1).max(28))
    .min(1)
    .max(28)
    .refine((days) => days.every((d, i) => i === 0 || d > days[i - 1]!), { message: 'runDays must be increasing, without repeats' }),
  /** Quota band of each opening channel. @defaultValue invited 50000–1500000, applied 30000–800000 */
  bands: z.strictObject({ invited: band, applied: band }),
  /** An overdue repayment in the period keeps this percentage of the quota (and nothing else applies). @defaultValue 70 */
  overdueKeepPercent: percent(0, 100),
  frequentUse: z.strictObject({
    /** Charges (not declined) per day of the period at or above which the factor applies. @defaultValue 3 */
    minChargesPerDay: z.number().int().min(1).max(10_000),
    /** @defaultValue 5 */
    percent: percent(0, 100),
    /** Shortest period, days, for which the daily average means anything. @defaultValue 1 */
    minPeriodDays: z.number().int().min(1).max(31),
  }),
  wealthBalance: z.strictObject({
    /** The latest asset snapshot before the run must hold more than this, fen. @defaultValue 5000000 */
    aboveFen: z.number().int().min(0),
    /** @defaultValue 10 */
    percent: percent(0, 100),
  }),
  newFriends: z.strictObject({
    /** Friends added over the period at or above which the factor applies. @defaultValue 50 */
    minFriendsAdded: z.number().int().min(1),
    /** @defaultValue 5 */
    percent: percent(0, 100),
  }),
  momentsBlocked: z.strictObject({
    /** Applied when the latest social snapshot before the run has Moments blocked. @defaultValue -5 */
    percent: percent(-100, 0),
  }),
  idle: z.strictObject({
    /** No charge in this many days before the run (and the account at least that old). @defaultValue 15 */
    days: z.number().int().min(1).max(90),
    /** @defaultValue -10 */
    percent: percent(-100, 0),
  }),
  onTimeRepayment: z.strictObject({
    /** Bonus per repayment paid on time in the period, fen. @defaultValue 20000 */
    bonusFen: z.number().int().min(0),
    /** Most bonus one run may add, fen. @defaultValue 50000 */
    maxBonusFenPerRun: z.number().int().min(0),
  }),
  /** An asset snapshot in the period that redeemed more than this share of (balance + redeemed) warns. @defaultValue 80 */
  redemptionWarningPercent: percent(0, 100),
  /** New quotas are rounded down to a multiple of this, fen (100 = whole CNY). @defaultValue 100 */
  roundDownToFen: z.number().int().min(1).max(1_000_000),
  /** Temporary uplifts before major holidays: local dates [from, to) and the percentage added to the effective quota. @defaultValue [] */
  holidayUplifts: z
    .array(
      z
        .strictObject({ name: z.string().min(1).max(64), from: localDate, to: localDate, percent: percent(1, 100) })
        .refine((w) => w.from < w.to, { message: 'from must be before to' }),
    )
    .max(100),
  /** Accounts per chunk job. @defaultValue 1000 */
  chunkSize: z.number().int().min(1).max(100_000),
  /** Chunk jobs one process calibrates at a time. @defaultValue 2 */
  concurrency: z.number().int().min(1).max(64),
  /** Audit records kept per account (24 = one year of runs). @defaultValue 24 */
  auditHistory: z.number().int().min(1).max(1_000),
  /** How long a run's record and account snapshot are kept, days. @defaultValue 60 */
  runRetentionDays: z.number().int().min(1).max(3_650),
  /** Repayment and snapshot history of a user with no activity expires after this many days. @defaultValue 400 */
  activityRetentionDays: z.number().int().min(30).max(3_650),
});

export const configSchema = z
  .object({
    /** Calendar zone for nights, days and settlement dates. @defaultValue "Asia/Shanghai" */
    timezone: ianaZone,
    /** Key and queue prefix `rm:<namespace>`; replays use their own. @defaultValue "live" */
    namespace: namespaceName,
    /**
     * "production" refuses weak or published secrets, a weak dashboard password and a dashboard without login
     * (src/config.ts); NODE_ENV=production requires it. @defaultValue "development"
     */
    environment: z.enum(['development', 'test', 'production']),
    /** Event time against the producer's clock (contract v1.1). */
    events: z.strictObject({
      /** An event whose occurredAt is more than this ahead of the producer's clock is rejected, s. @defaultValue 300 */
      maxFutureSkewSeconds: z.number().int().min(0).max(3_600),
      /**
       * An event whose occurredAt is more than this behind the producer's clock is rejected, days. An eventId is
       * remembered retention.decisionDays, so this must be shorter (checked below). @defaultValue 7
       */
      maxAgeDays: z.number().int().min(1).max(365),
    }),
    /** One object per rule, under its configKey (src/rules/registry.ts); defaults in each rule's module. */
    rules: rulesConfigSchema,
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
      /** Merchant fees (src/settlement/fees.ts), in basis points of the amount. */
      fees: z.strictObject({
        /**
         * By the merchant's Fenfu volume settled in the calendar month before the settlement date: the first tier whose
         * `belowFen` is above it (the last has none). @defaultValue tier 1 below 50,000,000 fen: 60 / 10 / floor 50;
         * tier 2 below 200,000,000: 55 / 8 / 40; tier 3: 50 / 5 / 30
         */
        tiers: z
          .array(
            z.strictObject({
              /** The tier holds volumes below this, fen; null on the last tier. */
              belowFen: z.number().int().positive().nullable(),
              /** Base rate. */
              baseBp: z.number().int().min(0).max(10_000),
              /** Technical service fee rate. */
              techBp: z.number().int().min(0).max(10_000),
              /** The lowest base rate a discount may leave. */
              floorBp: z.number().int().min(0).max(10_000),
            }),
          )
          .min(1)
          .max(20)
          .superRefine((tiers, ctx) => {
            tiers.forEach((t, i) => {
              const last = i === tiers.length - 1;
              if (last !== (t.belowFen === null)) ctx.addIssue({ code: 'custom', path: [i, 'belowFen'], message: last ? 'the last tier has no upper bound: null' : 'only the last tier may be unbounded' });
              const prev = tiers[i - 1]?.belowFen;
              if (i > 0 && t.belowFen !== null && prev != null && t.belowFen <= prev) ctx.addIssue({ code: 'custom', path: [i, 'belowFen'], message: `must be above the tier before's (${prev})` });
              if (t.floorBp > t.baseBp) ctx.addIssue({ code: 'custom', path: [i, 'floorBp'], message: `must not be above baseBp (${t.baseBp})` });
              if (t.baseBp + t.techBp > 10_000) ctx.addIssue({ code: 'custom', path: [i, 'techBp'], message: 'baseBp + techBp must not exceed 10000 (the whole amount)' });
            });
          }),
        /** Negotiated discounts on the base rate: merchantId → basis points. @defaultValue {} */
        merchantDiscountsBp: z.record(z.string().min(1).max(256), z.number().int().min(0).max(10_000)),
      }),
      /** The daily reconciliation files (src/settlement/reconciliation.ts), written by the archive component. */
      reconciliation: z.strictObject({
        /** Local time from which today's files are written (after the settlement run at settleTime). @defaultValue "03:30" */
        time: clockTime,
        /** Where the files go (created if missing). @defaultValue "data/reconciliation" */
        dir: z.string().min(1),
      }),
    }),
    /** The review queue (src/cases/): every review decision and complaint opens a case that holds its settlement. */
    cases: z.strictObject({
      /** How long an analyst holds a case taken with "next" before another may take it, minutes. @defaultValue 15 */
      lockMinutes: z.number().int().min(1).max(24 * 60),
      /** A release above this amount waits for a supervisor other than the releaser (four eyes), fen. @defaultValue 1000000 */
      fourEyesAboveFen: z.number().int().min(0),
      /**
       * What an open case gets at its deadline (the hold's settleAt): "auto_release" pays it (the seed's 48-hour
       * delayed settlement), "extend" moves the deadline by extendHours until maxExtendHours past the first one, then
       * releases. A case above fourEyesAboveFen, one pending approval and one frozen by a complaint wait for a person.
       * @defaultValue "auto_release"
       */
      onDeadline: z.enum(['auto_release', 'extend']),
      /** @defaultValue 24 */
      extendHours: z.number().int().min(1).max(24 * 30),
      /** @defaultValue 72 */
      maxExtendHours: z.number().int().min(1).max(24 * 90),
      /** Open cases whose deadline is this close count as near it (riskmon_cases_near_deadline), minutes. @defaultValue 120 */
      nearDeadlineMinutes: z.number().int().min(1).max(24 * 60 * 7),
    }),
    pipeline: z.strictObject({
      /** Ordered shard queues users are partitioned over; fixed per namespace (docs/operations.md). @defaultValue 4 */
      shards: z.number().int().min(1).max(256),
      /** Events per queue job. @defaultValue 500 */
      maxBatch: z.number().int().min(1).max(10_000),
      /** How long a producer waits to fill a batch, ms. @defaultValue 10 */
      lingerMs: z.number().int().min(0).max(1_000),
      /** How long it waits instead while the shard has batches waiting (workers behind), ms. @defaultValue 25 */
      busyLingerMs: z.number().int().min(0).max(5_000),
      /** Worker lock on a job, ms; a crashed worker's job is redelivered after it. @defaultValue 30000 */
      lockDurationMs: z.number().int().min(1_000).max(600_000),
      /** How often workers look for jobs whose worker died, ms. @defaultValue 5000 */
      stalledIntervalMs: z.number().int().min(500).max(600_000),
      /** Longest accepted input line, bytes. @defaultValue 16384 */
      maxLineBytes: z.number().int().min(256).max(1_048_576),
      /** On SIGTERM, how long in-flight batches may take before the process exits anyway, ms. @defaultValue 15000 */
      shutdownGraceMs: z.number().int().min(100).max(600_000),
      /**
       * A worker (risk, settlement, calibration) is replaced when its queue has had jobs due and none running for this
       * long (its blocking connection wedged after a failover, BullMQ issue 4138); 0 turns the watchdog off, s. @defaultValue 20
       */
      watchdogSeconds: z.number().int().min(0).max(3_600),
      /**
       * A producer's flush() returns only once this many replicas of every master hold what it wrote (Redis WAIT), so
       * an acknowledged event survives the failover of its master; 0 acknowledges once the master has it. @defaultValue 0
       */
      replicaAcks: z.number().int().min(0).max(5),
      /** How long flush() waits for those replicas before it fails with an EnqueueError (send again), ms. @defaultValue 1000 */
      replicaAckTimeoutMs: z.number().int().min(1).max(60_000),
    }),
    http: z.strictObject({
      /** Serve /metrics, /healthz, /readyz and /admin/queues from service processes (env RISKMON_HTTP_ENABLED). @defaultValue true */
      enabled: z.boolean(),
      /** Listen address; "0.0.0.0" to be reached from other hosts (env RISKMON_HTTP_HOST). @defaultValue "127.0.0.1" */
      host: z.string().min(1, 'http.host: expected an address such as "127.0.0.1" or "0.0.0.0"'),
      /** Listen port; 0 takes any free port (env RISKMON_HTTP_PORT). @defaultValue 9464 */
      port: z.number().int('http.port: expected a whole number').min(0).max(65_535),
      dashboard: z.strictObject({
        /**
         * "basic": /admin/queues needs the user and password from RISKMON_DASHBOARD_USER / RISKMON_DASHBOARD_PASSWORD;
         * "disabled": no login at all, for a developer's own machine only (refused in production). @defaultValue "basic"
         */
        auth: z.enum(['basic', 'disabled'], 'http.dashboard.auth: expected "basic" or "disabled"'),
        /** Show queues without the buttons that retry, remove, pause or add jobs. @defaultValue true */
        readOnly: z.boolean(),
        /**
         * Failed dashboard logins: after `maxFailures` wrong logins from one client address (an IPv6 client by its /64)
         * within `windowSeconds` of its first, that client gets 429 with Retry-After until the window ends; after
         * `globalMaxFailures` from all clients together, everyone does (a distributed guesser is slowed too).
         */
        loginThrottle: z.strictObject({
          /** @defaultValue 10 */
          maxFailures: z.number().int().min(1).max(1_000),
          /** @defaultValue 300 */
          windowSeconds: z.number().int().min(1).max(86_400),
          /** @defaultValue 100 */
          globalMaxFailures: z.number().int().min(1).max(100_000),
        }),
      }),
      /**
       * The JSON API under /api (src/api/): archived decisions and the audit trail, for bearer tokens of
       * `npm run users`; wrong tokens are throttled per client as dashboard logins are (dashboard.loginThrottle).
       */
      api: z.strictObject({
        /** Requests one user may make per minute before 429. @defaultValue 600 */
        requestsPerMinute: z.number().int().min(1).max(1_000_000),
        /** Most rows one page returns (`limit`). @defaultValue 1000 */
        maxPageSize: z.number().int().min(1).max(100_000),
      }),
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
      /**
       * Hashes the eventId claims of one bucket (of 64) and claim window are spread over: size it so that each holds
       * at most Redis's hash-max-listpack-entries (128) claims, charges per window / (64 × 128), or claims take
       * about twice the memory; changing it misses conflicts with events claimed before for one window.
       * @defaultValue 64
       */
      claimHashesPerBucket: z.number().int().min(1).max(1_000_000),
      /**
       * Hashes a shard's charge records of one generation (7 local dates) are spread over: size it so that each holds
       * at most hash-max-listpack-entries (128) records, charges per week / (pipeline.shards × 100). Fixed per
       * namespace, like the shard count (records would be looked for in other hashes and charges decided twice).
       * @defaultValue 64
       */
      chargeRecordHashesPerShard: z.number().int().min(1).max(1_000_000),
    }),
    calibration: calibrationSchema,
    /** The archive in PostgreSQL (src/archive/): DATABASE_URL, or the embedded database in `dataDir`. */
    archive: z.strictObject({
      /** `npm start` runs the archiver (a process that owns the embedded folder, or any with DATABASE_URL). @defaultValue true */
      enabled: z.boolean(),
      /** Folder of the embedded database (PGlite) when DATABASE_URL is unset; relative to the working directory. @defaultValue "data/archive" */
      dataDir: z.string().min(1),
      /** Stream entries read per stream per round. @defaultValue 500 */
      batchSize: z.number().int().min(1).max(10_000),
      /** Rest between rounds that found nothing, ms. @defaultValue 200 */
      pollMs: z.number().int().min(10).max(60_000),
      /**
       * Producers refuse (and `sendWhenReady` waits) for a shard with this many decisions its archive group has not
       * taken, long before the stream's cap would drop them: the limit used is the lower of this and 80% of
       * retention.decisionStreamMaxLen. @defaultValue 200000
       */
      backpressureEntries: z.number().int().min(100),
      /** What the daily retention job drops (seed 002, 数据管理规范), counted from each record's own instant. */
      retention: z.strictObject({
        /** Transaction detail (the charge, its outcome, its settlement), years from occurredAt. @defaultValue 5 */
        transactionYears: z.number().int().min(1).max(30),
        /** Risk records (reasons, observed values, dead letters), years from their creation. @defaultValue 3 */
        riskRecordYears: z.number().int().min(1).max(30),
        /** A disputed charge's records are kept while the dispute is open and this long after it closed. @defaultValue 2 */
        disputeExtraYears: z.number().int().min(0).max(30),
        /** How often the archiving process runs the job (and once at its start), hours. @defaultValue 24 */
        everyHours: z.number().int().min(1).max(24 * 7),
      }),
    }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const day = 86_400;
    // An event is accepted only while its eventId's record exists: a redelivery as late as maxAgeDays (+ skew) after
    // its occurredAt must still find the claim of the first delivery.
    const acceptWindow = c.events.maxAgeDays * day + c.events.maxFutureSkewSeconds;
    if (c.retention.decisionDays * day <= acceptWindow) {
      ctx.addIssue({
        code: 'custom',
        path: ['retention', 'decisionDays'],
        message: `must be more than events.maxAgeDays (${c.events.maxAgeDays}) plus events.maxFutureSkewSeconds: an eventId must be remembered as long as an event with it can be accepted`,
      });
    }
    // A held charge is paid at most (delayDays + 1) days + holdHours after its decision (T+1 of an occurredAt up to
    // the skew ahead, or the clock + hold for a late one); its decision record must still exist then, with a day for
    // a settlement run that comes late.
    const settleWithin = (c.settlement.delayDays + 1) * day + c.settlement.holdHours * 3_600 + c.events.maxFutureSkewSeconds + day;
    if (c.retention.decisionDays * day < settleWithin) {
      ctx.addIssue({
        code: 'custom',
        path: ['retention', 'decisionDays'],
        message: `must be at least ${Math.ceil(settleWithin / day)} days: a decision must outlive its settlement (settlement.delayDays ${c.settlement.delayDays} + 1, holdHours ${c.settlement.holdHours}, and a day's margin)`,
      });
    }
    // A day total must outlive every charge that can still be accepted for its day, or the cap could be dodged.
    if (c.retention.dayTotalsDays <= c.events.maxAgeDays + 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['retention', 'dayTotalsDays'],
        message: `must be more than events.maxAgeDays + 1 (${c.events.maxAgeDays + 1}): a day's total must be kept while charges of that day can still be accepted`,
      });
    }
  });

/** The configuration as written in JSON (before transforms). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated configuration: times of day are seconds after midnight. */
export type RiskmonConfig = z.output<typeof configSchema>;
