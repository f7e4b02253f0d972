--[[
  Settles one due transaction into the Fenfu ledger of the run's date, exactly once per eventId, forever.

  The run's date is the local date of the instant the run is for (the worker's tick, or `release --now X`), never
  the date of the transaction's due score: a late release is filed on the day it is really paid. The guard is the
  settled marker (KEYS[7]), kept as long as the ledgers: an eventId scheduled again after its first settlement (a
  redelivery after the decision TTL makes a second decision) is refused and taken off the due set, whatever date
  either release is for. Two workers releasing the same transaction, or a retry after a crash, change nothing the
  second time.

  Input:
    KEYS[1] settlement due         rm:<ns>:{s<n>}:settle:due                     (zset member=eventId, score=settleAt ms)
    KEYS[2] ledger entries         rm:<ns>:{s<n>}:fenfu:ledger:<date>:tx         (hash eventId -> "merchant\tamount\tkind")
    KEYS[3] ledger                 rm:<ns>:{s<n>}:fenfu:ledger:<date>            (hash "<merchant>\tcount"|"<merchant>\tamount")
    KEYS[4] ledger dates           rm:<ns>:{s<n>}:fenfu:dates                    (set)
    KEYS[5] settlement stats       rm:<ns>:{s<n>}:settle:stats                   (hash)
    KEYS[6] decision               rm:<ns>:{s<n>}:dec:<eventId>                  (must still exist)
    KEYS[7] settled markers        rm:<ns>:{s<n>}:fenfu:settled                  (hash eventId -> settlement date)
    KEYS[8] settlement log         rm:<ns>:{s<n>}:fenfu:settlements              (stream: each settlement, for the archive)

    ARGV[1] eventId   ARGV[2] merchantId   ARGV[3] amount (fen)   ARGV[4] kind: "scheduled" | "held"
    ARGV[5] settlement date YYYY-MM-DD (local date of the run's instant; KEYS[2] and KEYS[3] are its ledger)
    ARGV[6] the run's instant, ms: only a transaction due at or before it is settled
    ARGV[7] approximate cap of the settlement log (the archiver trims it below what it has archived)

  Output:
     1                 settled now
     0                 not due (any more): already released by another run, or rescheduled after the run's instant
    -1                 decision missing (left in place)
    {-2, <date>}       refused: the eventId was already settled on <date>; taken off the due set, its scheduled
                       (or held) totals given back, the ledgers unchanged
]]
local rcall = redis.call
local score = rcall("ZSCORE", KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[6]) then
  return 0
end
if rcall("EXISTS", KEYS[6]) == 0 then
  return -1
end
rcall("ZREM", KEYS[1], ARGV[1])
local amount = tonumber(ARGV[3])
rcall("HINCRBY", KEYS[5], ARGV[4] .. "Count", -1)
rcall("HINCRBY", KEYS[5], ARGV[4] .. "Amount", -amount)
local settledOn = rcall("HGET", KEYS[7], ARGV[1])
if settledOn then
  return {-2, settledOn}
end
rcall("HSET", KEYS[7], ARGV[1], ARGV[5])
rcall("HSET", KEYS[2], ARGV[1], ARGV[2] .. "\t" .. ARGV[3] .. "\t" .. ARGV[4])
rcall("HINCRBY", KEYS[3], ARGV[2] .. "\tcount", 1)
rcall("HINCRBY", KEYS[3], ARGV[2] .. "\tamount", amount)
rcall("SADD", KEYS[4], ARGV[5])
rcall("HINCRBY", KEYS[5], "settledCount", 1)
rcall("HINCRBY", KEYS[5], "settledAmount", amount)
rcall("XADD", KEYS[8], "MAXLEN", "~", ARGV[7], "*", "s", ARGV[1], "on", ARGV[5], "at", ARGV[6])
return 1
