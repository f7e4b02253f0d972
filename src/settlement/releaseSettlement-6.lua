--[[
  Settles one due transaction into the Fenfu ledger of the run's date, exactly once per eventId.

  The run's date is the local date of the instant the run is for (the worker's tick, or `release --now X`), never
  the date of the transaction's due score: a late release is filed on the day it is really paid. Exactly once: the
  due entry and its settlement info are taken in the call that pays, so two workers releasing the same transaction,
  or a retry after a crash, change nothing the second time. A charge is scheduled once: its charge record (the
  dedupe, kept longer than any event can be accepted) stops a second decision.

  Input:
    KEYS[1] settlement due         rm:<ns>:{s<n>}:settle:due                     (zset member=eventId, score=settleAt ms)
    KEYS[2] ledger                 rm:<ns>:{s<n>}:fenfu:ledger:<date>            (hash "<merchant>\tcount"|"<merchant>\tamount")
    KEYS[3] ledger dates           rm:<ns>:{s<n>}:fenfu:dates                    (set)
    KEYS[4] settlement stats       rm:<ns>:{s<n>}:settle:stats                   (hash)
    KEYS[5] settlement info        rm:<ns>:{s<n>}:settle:info                    (hash eventId -> "merchant\tamount\tkind")
    KEYS[6] settlement log         rm:<ns>:{s<n>}:fenfu:settlements              (stream: each settlement, for the archive)

    ARGV[1] eventId
    ARGV[2] settlement date YYYY-MM-DD (local date of the run's instant; KEYS[2] is its ledger)
    ARGV[3] the run's instant, ms: only a transaction due at or before it is settled
    ARGV[4] approximate cap of the settlement log (the archiver trims it below what it has archived)

  Output:
    {1, amount}        settled now (amount in fen)
     0                 not due (any more): already released by another run, or rescheduled after the run's instant
    -1                 its settlement info is missing (left in place)
]]
local rcall = redis.call
local eventId = ARGV[1]
local score = rcall("ZSCORE", KEYS[1], eventId)
if not score or tonumber(score) > tonumber(ARGV[3]) then
  return 0
end
local info = rcall("HGET", KEYS[5], eventId)
local merchant, amountText, kind
if info then merchant, amountText, kind = string.match(info, "^(.*)\t(%d+)\t(%a+)$") end
if not kind then
  return -1
end
local amount = tonumber(amountText)
rcall("ZREM", KEYS[1], eventId)
rcall("HDEL", KEYS[5], eventId)
rcall("HINCRBY", KEYS[4], kind .. "Count", -1)
rcall("HINCRBY", KEYS[4], kind .. "Amount", -amount)
rcall("HINCRBY", KEYS[2], merchant .. "\tcount", 1)
rcall("HINCRBY", KEYS[2], merchant .. "\tamount", amount)
rcall("SADD", KEYS[3], ARGV[2])
rcall("HINCRBY", KEYS[4], "settledCount", 1)
rcall("HINCRBY", KEYS[4], "settledAmount", amount)
rcall("XADD", KEYS[6], "MAXLEN", "~", ARGV[4], "*", "s", eventId, "on", ARGV[2], "at", ARGV[3])
return {1, amount}
