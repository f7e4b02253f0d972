-- The review queue (src/cases/): every case and every action on it, from the shards' case logs. A risk record:
-- kept riskRecordYears from when the case closed (an open one is kept), longer while its charge is disputed.
CREATE TABLE fenfu.cases (
  namespace    text        NOT NULL,
  -- The review charge's eventId, or the complaint's.
  case_id      text        NOT NULL,
  charge_id    text        NOT NULL,
  user_id      text        NOT NULL,
  merchant_id  text        NOT NULL,
  amount_fen   bigint      NOT NULL CHECK (amount_fen >= 0),
  opened       text        NOT NULL CHECK (opened IN ('review', 'complaint')),
  opened_at    timestamptz NOT NULL,
  deadline     timestamptz NOT NULL,
  status       text        NOT NULL CHECK (status IN ('open', 'pending_approval', 'closed')),
  outcome      text        CHECK (outcome IN ('released', 'cancelled', 'auto_released')),
  closed_at    timestamptz,
  closed_by    text,
  -- The number of the last action archived: a row is only ever replaced by a later state.
  seq          integer     NOT NULL,
  -- The whole case as its last action left it (src/cases/case.ts).
  record       jsonb       NOT NULL,
  shard        integer     NOT NULL,
  -- A case id is an eventId (the review charge's, or the complaint's), and an eventId may come again once its claim
  -- and marker are gone: the case is the id at the instant it opened.
  PRIMARY KEY (namespace, case_id, opened_at)
);
CREATE INDEX cases_status ON fenfu.cases (namespace, status, closed_at, case_id);
CREATE INDEX cases_charge ON fenfu.cases (namespace, charge_id);

-- The audit trail: who did what to which case, when, with their note. Once per (case, opening, number).
CREATE TABLE fenfu.case_actions (
  namespace  text        NOT NULL,
  case_id    text        NOT NULL,
  -- The case's opening instant (fenfu.cases.opened_at): with case_id, which case.
  opened_at  timestamptz NOT NULL,
  seq        integer     NOT NULL,
  at         timestamptz NOT NULL,
  action     text        NOT NULL,
  actor      text        NOT NULL,
  note       text        NOT NULL,
  shard      integer     NOT NULL,
  PRIMARY KEY (namespace, case_id, opened_at, seq)
);
CREATE INDEX case_actions_at ON fenfu.case_actions (namespace, at, case_id, seq);
CREATE INDEX case_actions_actor ON fenfu.case_actions (namespace, actor, at);
