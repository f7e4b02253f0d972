--[[
  Applies one refund of a charge, exactly once per eventId: at most what is left of the charge (its amount less the
  refunds before), and only a charge of the same user, decided within the retention and not declined: the charge's
  record (src/decisions/charge-record.ts), looked for in the record hashes of the generations it may be in. When
  credit_limit counted the charge (its record's flag "c"), the refund gives its amount back to the available credit:
  what is owed goes down by it, never below zero, and so do the credit totals; and the refund that completes a charge's
  refunds takes it out of its day's charge count (so refunded charges earn no "frequent use"), unless a calibration
  has counted that day already. The merchant side: a charge not yet paid (its settlement info still there) is paid
  less the refund, and not at all once wholly refunded (its fees follow what is paid, src/settlement/fees.ts); of a
  paid one, a reversal (the refund's eventId, due at the refund's time) gives the refunded part and its fees back in
  the merchant's next ledger.

  Input:
    KEYS[1] refunds                 rm:<ns>:{s<n>}:u:{<userId>}:refunds       (hash: chargeId -> fen refunded so far)
    KEYS[2] account                 rm:<ns>:{s<n>}:u:{<userId>}:acct          (hash: src/quota/credit-account.ts)
    KEYS[3] applied-event marker    rm:<ns>:{s<n>}:ev:<eventId>               (string)
    KEYS[4] credit totals           rm:<ns>:{s<n>}:credit:totals              (hash: owed)
    KEYS[5] settlement due          rm:<ns>:{s<n>}:settle:due                 (zset member=eventId, score=settleAt ms)
    KEYS[6] settlement info         rm:<ns>:{s<n>}:settle:info                (hash eventId -> "merchant\tamount\tkind")
    KEYS[7] settlement stats        rm:<ns>:{s<n>}:settle:stats               (hash)
    KEYS[8] cases   KEYS[9] case of each charge   KEYS[10] case log   (rm:<ns>:{s<n>}:cases…: a charge's open case
                                    keeps what was refunded of it, src/cases/cancelCase-13.lua)
    KEYS[11…] the record hashes the charge may be in, newest generation first
                                    rm:<ns>:{s<n>}:rec:<generation>:<part>    (hash eventId -> charge record, read only)

    ARGV[1] eventId                 ARGV[2] userId                ARGV[3] chargeId
    ARGV[4] amount (fen)            ARGV[5] marker TTL (s)        ARGV[6] refunds TTL (s)
    ARGV[7] decision retention (days, for the message)
    ARGV[8] the oldest local date (YYYYMMDD) of a charge still refundable: the refund's, less the retention
    ARGV[9] the refund's occurredAt, ms: when its reversal is due
    ARGV[10] approximate cap of the case log
    ARGV[11…] for each record hash KEYS[11…], in order, the local dates of its generation (YYYYMMDD each, concatenated)

  Output:
    { 1, given back to the credit (fen), refunded so far (fen) } applied; { 0 } eventId already applied;
    { 2, reason, reasonLabel } rejected (nothing written).
]]
local rcall = redis.call
--- @include credit-give-back.lua
--- @include ../settlement/take-back.lua
--- @include ../cases/case-record.lua
--- @include ../decisions/charge-record.lua

if rcall("EXISTS", KEYS[3]) == 1 then
  return { 0 }
end
local chargeId = ARGV[3]
local charge = findCharge(11, chargeId, ARGV[2], ARGV[8])
if not charge then
  return { 2, "no charge " .. chargeId .. " of user " .. ARGV[2] .. " to refund: unknown, of another user, or decided more than " .. ARGV[7] .. " days ago", "unknown_charge" }
end
if charge.outcome == "d" then
  return { 2, "charge " .. chargeId .. " was declined: there is nothing to refund", "conflict" }
end
local amount = tonumber(ARGV[4])
local before = tonumber(rcall("HGET", KEYS[1], chargeId) or "0")
if before + amount > charge.amount then
  -- Concatenated, not string.format: "%s" would stop at a NUL in an id.
  return { 2, "refund of " .. string.format("%d", amount) .. " fen is more than what is left of charge " .. chargeId ..
    " (" .. string.format("%d of its %d", charge.amount - before, charge.amount) .. " fen)", "conflict" }
end

-- The merchant side (take-back.lua): a refund whose own id names a settlement still due is refused (a reused id)
-- when it would book a reversal, before anything is written.
local paid = settlementPaid(KEYS[6], chargeId)
if paid and (rcall("HEXISTS", KEYS[6], ARGV[1]) == 1 or rcall("ZSCORE", KEYS[5], ARGV[1])) then
  return { 2, "refund " .. ARGV[1] .. " reuses the eventId of a settlement still due: send it with its own eventId", "conflict" }
end

rcall("HSET", KEYS[1], chargeId, string.format("%d", before + amount))
rcall("EXPIRE", KEYS[1], ARGV[6])
local givenBack = 0
if charge.credit then
  givenBack = giveBackCredit(KEYS[2], KEYS[4], amount, before + amount == charge.amount, charge.localDate)
end
takeBack(KEYS[5], KEYS[6], KEYS[7], chargeId, paid, ARGV[1], charge.merchant, amount, ARGV[9])
-- The charge's open case keeps what was refunded of it (its cancel gives back the rest, whatever the refunds hash's
-- expiry), and its trail shows the refund.
local K = { cases = KEYS[8], byCharge = KEYS[9], log = KEYS[10] }
local caseId = rcall("HGET", K.byCharge, chargeId)
local case = caseId and loadCase(K, caseId)
if case and case.status ~= "closed" then
  case.refundedFen = before + amount
  saveCase(K, case, "refunded", "refund", tonumber(ARGV[9]), ARGV[1] .. ": " .. string.format("%d", amount) .. " fen", ARGV[10])
end
rcall("SET", KEYS[3], "refund", "EX", ARGV[5])
return { 1, givenBack, before + amount }
