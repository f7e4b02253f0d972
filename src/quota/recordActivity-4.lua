--[[
  Records one repayment, asset snapshot or social snapshot of a credit account in the user's time-ordered activity
  set, which calibration reads by event time. Exactly once per eventId (an eventId a charge holds is refused before,
  by its claim). The set's TTL is refreshed on every write; calibration prunes what earlier runs consumed.

  - A user without a credit account, or an event timed before the opening, is rejected with its reason: nothing
    from before the opening ever counts, whatever order it arrives in.
  - An event timed before the account's last calibration run R arrived after that run calibrated its period: it
    is recorded as late for that run (its id at the member's end), and the next run counts it once.
  - A repayment pays down the outstanding balance, never below zero: what it paid down is recorded on its member
    (calibration's on-time bonus counts only that), and taken off the credit totals.

  Input:
    KEYS[1] activity set            rm:<ns>:{s<n>}:u:{<userId>}:repay|assets|social   (zset score=event time ms)
    KEYS[2] account                 rm:<ns>:{s<n>}:u:{<userId>}:acct                  (hash: src/quota/credit-account.ts)
    KEYS[3] applied-event marker    rm:<ns>:{s<n>}:ev:<eventId>                        (string)
    KEYS[4] credit totals           rm:<ns>:{s<n>}:credit:totals                       (hash: owed)

    ARGV[1] eventId                 ARGV[2] event type            ARGV[3] score (event time, ms)
    ARGV[4] member (a JSON array starting with the eventId; a repayment's ends with what it paid down, then the
            run it is late for, and a late snapshot's with that run)
    ARGV[5] marker TTL (s)          ARGV[6] activity set TTL (s)
    ARGV[7] repayment amount (fen; "0" for a snapshot)            ARGV[8] userId    ARGV[9] the event time (ISO)

  Output:
    { 1, paid down (fen) } recorded; { 0 } eventId already applied; { 2, reason, reasonLabel } rejected.
]]
local rcall = redis.call

if rcall("EXISTS", KEYS[3]) == 1 then
  return { 0 }
end
local acct = rcall("HMGET", KEYS[2], "openedAt", "openedAtIso", "owed", "lastRun", "lastRunAt", "seq")
local what = string.gsub(ARGV[2], "_", " ")
if not acct[1] then
  return { 2, "no credit account is open for user " .. ARGV[8] .. ": its " .. what .. " does not count", "no_credit_account" }
end
local at = tonumber(ARGV[3])
if at < tonumber(acct[1]) then
  return { 2, "the " .. what .. " at " .. ARGV[9] .. " is before the credit account opened (" .. acct[2] .. "): it does not count", "before_opening" }
end

local lateFor = ""
if acct[5] and at < tonumber(acct[5]) then lateFor = acct[4] end
local member = ARGV[4]
local paidDown = 0
local seq = string.format("%d", tonumber(acct[6] or "0") + 1)
if ARGV[2] == "repayment" then
  local owed = tonumber(acct[3] or "0")
  paidDown = math.min(tonumber(ARGV[7]), owed)
  member = string.sub(member, 1, -2) .. "," .. string.format("%d", paidDown) .. "," .. cjson.encode(lateFor) .. "]"
  rcall("HSET", KEYS[2], "owed", string.format("%d", owed - paidDown), "seq", seq)
  if paidDown > 0 then rcall("HINCRBY", KEYS[4], "owed", string.format("%d", -paidDown)) end
else
  if lateFor ~= "" then member = string.sub(member, 1, -2) .. "," .. cjson.encode(lateFor) .. "]" end
  rcall("HSET", KEYS[2], "seq", seq)
end
rcall("ZADD", KEYS[1], ARGV[3], member)
rcall("EXPIRE", KEYS[1], ARGV[6])
rcall("SET", KEYS[3], ARGV[2], "EX", ARGV[5])
return { 1, paidDown }
