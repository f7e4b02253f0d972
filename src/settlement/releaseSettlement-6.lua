--[[
  Records one due transaction as settled in the Fenfu ledger of its settlement date, exactly once: the
  transaction must still be in the due set, and the ledger entry is written only if absent. Two settlement
  workers releasing the same transaction, or a retry after a crash, change nothing the second time.

  Input:
    KEYS[1] settlement due         rm:<ns>:settle:due                     (zset member=eventId)
    KEYS[2] ledger entries         rm:<ns>:fenfu:ledger:<date>:tx         (hash eventId -> "merchant\tamount\tkind")
    KEYS[3] ledger                 rm:<ns>:fenfu:ledger:<date>            (hash "<merchant>\tcount"|"<merchant>\tamount")
    KEYS[4] ledger dates           rm:<ns>:fenfu:dates                    (set)
    KEYS[5] settlement stats       rm:<ns>:settle:stats                   (hash)
    KEYS[6] decision               rm:<ns>:dec:<eventId>                  (must still exist)

    ARGV[1] eventId   ARGV[2] merchantId   ARGV[3] amount (fen)   ARGV[4] kind: "scheduled" | "held"
    ARGV[5] settlement date YYYY-MM-DD

  Output: 1 settled now, 0 not due any more (already settled), -1 decision missing (left in place).
]]
local rcall = redis.call
if not rcall("ZSCORE", KEYS[1], ARGV[1]) then
  return 0
end
if rcall("EXISTS", KEYS[6]) == 0 then
  return -1
end
rcall("ZREM", KEYS[1], ARGV[1])
local amount = tonumber(ARGV[3])
if rcall("HSETNX", KEYS[2], ARGV[1], ARGV[2] .. "\t" .. ARGV[3] .. "\t" .. ARGV[4]) == 1 then
  rcall("HINCRBY", KEYS[3], ARGV[2] .. "\tcount", 1)
  rcall("HINCRBY", KEYS[3], ARGV[2] .. "\tamount", amount)
  rcall("SADD", KEYS[4], ARGV[5])
  rcall("HINCRBY", KEYS[5], ARGV[4] .. "Count", -1)
  rcall("HINCRBY", KEYS[5], ARGV[4] .. "Amount", -amount)
  rcall("HINCRBY", KEYS[5], "settledCount", 1)
  rcall("HINCRBY", KEYS[5], "settledAmount", amount)
  return 1
end
return 0
