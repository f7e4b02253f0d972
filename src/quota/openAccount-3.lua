--[[
  Opens a user's credit account, once. Exactly once per eventId: an event already applied changes nothing (an
  eventId a charge holds is refused before, by its claim). A second opening for the same user, or a quota outside the channel's band,
  is rejected with a reason and changes nothing. The account starts owing nothing (src/quota/credit-account.ts
  describes its fields); charges count toward it from the opening instant on (credit_limit).

  Input:
    KEYS[1] account                 rm:<ns>:{s<n>}:u:{<userId>}:acct          (hash)
    KEYS[2] account index           rm:<ns>:{s<n>}:accounts                   (zset member=userId, score=openedAt ms)
    KEYS[3] applied-event marker    rm:<ns>:{s<n>}:ev:<eventId>               (string)

    ARGV[1] eventId                 ARGV[2] userId                ARGV[3] channel ("invited" | "applied")
    ARGV[4] quota (fen)             ARGV[5] openedAt (ms)         ARGV[6] openedAt (ISO, as sent)
    ARGV[7] local date of openedAt  ARGV[8] band minimum (fen)    ARGV[9] band maximum (fen)
    ARGV[10] marker TTL (s)

  Output:
    { 1 } opened; { 0 } eventId already applied; { 2, reason, reasonLabel } rejected (nothing written).
]]
local rcall = redis.call

if rcall("EXISTS", KEYS[3]) == 1 then
  return { 0 }
end

local quota = tonumber(ARGV[4])
local minFen = tonumber(ARGV[8])
local maxFen = tonumber(ARGV[9])
if quota < minFen or quota > maxFen then
  return { 2, string.format("quota %d fen is outside the %s band %d–%d fen", quota, ARGV[3], minFen, maxFen), "invalid_field" }
end

local existing = rcall("HMGET", KEYS[1], "openEventId", "openedAtIso")
if existing[1] then
  return { 2, "a credit account is already open for user " .. ARGV[2] .. " (event " .. existing[1] .. " at " .. existing[2] .. ")", "conflict" }
end

rcall("HSET", KEYS[1],
  "channel", ARGV[3], "quota", ARGV[4], "openedAt", ARGV[5], "openedAtIso", ARGV[6],
  "openEventId", ARGV[1], "openDate", ARGV[7], "owed", "0", "seq", "0")
rcall("ZADD", KEYS[2], ARGV[5], ARGV[2])
rcall("SET", KEYS[3], "account_opened", "EX", ARGV[10])
return { 1 }
