-- The archive of every decision and dead letter (src/archive/). Fenfu data is stored apart (seed 002, 存储隔离):
-- its own schema, `fenfu`, in the database DATABASE_URL names. Tables are partitioned by calendar month (UTC) of
-- the instant their retention counts from; partitions are created as rows arrive (src/archive/partitions.ts).
-- Rows carry the riskmon namespace they were decided in (one database may archive several, a demo's beside live).
-- PostgreSQL wants the partition key in every unique key: (namespace, event_id, occurred_at) is unique because an
-- eventId's content (occurredAt included) is fixed by its claim, so a decision written twice lands on one row.

CREATE SCHEMA IF NOT EXISTS fenfu;

-- Transaction detail: the charge, its decision's outcome, its settlement. Kept 5 years from occurred_at.
CREATE TABLE fenfu.transactions (
  namespace    text        NOT NULL,
  event_id     text        NOT NULL,
  occurred_at  timestamptz NOT NULL,
  user_id      text        NOT NULL,
  merchant_id  text        NOT NULL,
  -- The card as the decision shows it ("****1234"): never a card number, which this check refuses.
  card         text        NOT NULL CHECK (card !~ '[0-9]{5}'),
  amount_fen   bigint      NOT NULL CHECK (amount_fen >= 0),
  outcome      text        NOT NULL CHECK (outcome IN ('approve', 'review', 'decline')),
  decided_at   timestamptz NOT NULL,
  settle_at    timestamptz,
  shard        integer     NOT NULL,
  archived_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX transactions_time ON fenfu.transactions (namespace, occurred_at, event_id);
CREATE INDEX transactions_user ON fenfu.transactions (namespace, user_id, occurred_at, event_id);
CREATE INDEX transactions_merchant ON fenfu.transactions (namespace, merchant_id, occurred_at, event_id);

-- Settlements: when a transaction was paid into the merchant's Fenfu ledger, and that ledger's date (Asia/Shanghai).
-- Part of the transaction detail, kept as long as its transaction. Once per eventId (the settled marker's guarantee).
CREATE TABLE fenfu.settlements (
  namespace       text        NOT NULL,
  event_id        text        NOT NULL,
  settled_at      timestamptz NOT NULL,
  settlement_date date        NOT NULL,
  shard           integer     NOT NULL,
  PRIMARY KEY (namespace, event_id, settled_at)
) PARTITION BY RANGE (settled_at);
CREATE INDEX settlements_date ON fenfu.settlements (namespace, settlement_date);

-- Risk records: why a decision was made. Kept 3 years from created_at (the decision's time).
CREATE TABLE fenfu.risk_records (
  namespace    text        NOT NULL,
  event_id       text        NOT NULL,
  created_at     timestamptz NOT NULL,
  occurred_at    timestamptz NOT NULL,
  rules          text[]      NOT NULL,
  reasons        jsonb       NOT NULL,
  observed       jsonb       NOT NULL,
  config_version text        NOT NULL,
  PRIMARY KEY (namespace, event_id, created_at)
) PARTITION BY RANGE (created_at);

-- Dead letters: rejected input with its reason, card numbers masked. Kept 3 years from created_at.
CREATE TABLE fenfu.dead_letters (
  namespace    text        NOT NULL,
  stream_id   text        NOT NULL,
  created_at  timestamptz NOT NULL,
  source      text        NOT NULL,
  reason      text        NOT NULL,
  raw         text        NOT NULL,
  PRIMARY KEY (namespace, stream_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX dead_letters_time ON fenfu.dead_letters (namespace, created_at);

-- Stream entries PostgreSQL refused on their own (a value it cannot hold): kept with the error, card numbers masked,
-- so that one entry does not stop the archive. Each should be looked at (riskmon_archive_quarantined_total).
CREATE TABLE fenfu.archive_rejects (
  namespace  text        NOT NULL,
  source     text        NOT NULL,
  stream_id  text        NOT NULL,
  at         timestamptz NOT NULL,
  error      text        NOT NULL,
  entry      text        NOT NULL,
  PRIMARY KEY (namespace, source, stream_id)
);

-- Disputes: a charge under dispute keeps every record of it (transaction, settlement, risk record) past normal
-- retention while a dispute is open, and until disputeExtraYears after it closed, whichever is later. Set and
-- cleared by operators (npm run archive -- dispute) and by the review queue.
CREATE TABLE fenfu.disputes (
  namespace  text        NOT NULL,
  event_id   text        NOT NULL,
  opened_at  timestamptz NOT NULL,
  opened_by  text        NOT NULL,
  reason     text        NOT NULL,
  closed_at  timestamptz,
  closed_by  text,
  CHECK (closed_at IS NULL OR closed_at >= opened_at),
  PRIMARY KEY (namespace, event_id, opened_at)
);
-- At most one open dispute per charge.
CREATE UNIQUE INDEX disputes_open ON fenfu.disputes (namespace, event_id) WHERE closed_at IS NULL;

-- Access (not Fenfu data: its own schema). API users: a name, a role, and the SHA-256 of their token (the token
-- itself is shown once, by npm run users -- add, and never stored).
CREATE SCHEMA IF NOT EXISTS riskmon;
CREATE TABLE riskmon.api_users (
  id          bigserial   PRIMARY KEY,
  name        text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  role        text        NOT NULL CHECK (role IN ('analyst', 'supervisor', 'admin')),
  token_hash  text        NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  created_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);
-- One active user per name; revoked ones stay, for the audit trail.
CREATE UNIQUE INDEX api_users_active ON riskmon.api_users (name) WHERE revoked_at IS NULL;

-- Every API request, answered or refused: who (null when no valid token was given), what, with which filters, how
-- many rows, and the status. A risk record: kept 3 years (retention).
CREATE TABLE riskmon.audit (
  id         bigserial   PRIMARY KEY,
  at         timestamptz NOT NULL,
  namespace  text        NOT NULL,
  user_name  text,
  role       text,
  client     text        NOT NULL,
  method     text        NOT NULL,
  route      text        NOT NULL,
  filters    jsonb       NOT NULL,
  rows       integer     NOT NULL,
  status     integer     NOT NULL
);
CREATE INDEX audit_at ON riskmon.audit (namespace, at, id);
CREATE INDEX audit_user ON riskmon.audit (namespace, user_name, at, id);
