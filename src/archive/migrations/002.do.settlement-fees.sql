-- Merchant fees (issue 16): each settlement row says what was paid to whom, with the tier and fees applied, so the
-- daily reconciliation files and a merchant's statement come from the archive alone. Columns are NULL on rows
-- archived before fees existed (those paid gross).
ALTER TABLE fenfu.settlements
  ADD COLUMN merchant_id  text,
  -- charge: a charge paid (T+1, or after its hold); reversal: a refund of a paid charge taken back.
  ADD COLUMN kind         text CHECK (kind IN ('charge', 'reversal')),
  -- Whether the charge was held for review before it was paid.
  ADD COLUMN held         boolean,
  ADD COLUMN tier         smallint,
  -- Fen; a reversal's are negative.
  ADD COLUMN gross_fen    bigint,
  ADD COLUMN base_fee_fen bigint,
  ADD COLUMN tech_fee_fen bigint,
  ADD COLUMN net_fen      bigint,
  -- The event's own time: the charge's, or the refund's for a reversal.
  ADD COLUMN occurred_at  timestamptz;
CREATE INDEX settlements_merchant ON fenfu.settlements (namespace, merchant_id, settlement_date);
