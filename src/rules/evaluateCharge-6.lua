--[[
  Evaluates every rule for one charge atomically, stores the decision, appends it to the decision stream and
  schedules its settlement. Exactly once per eventId: a charge whose decision exists changes nothing and gets the
  stored decision back (a redelivered job after a worker crash lands here).

  Calendar facts (local date, local time, settlement instants) are computed by the caller in the configured zone
  and passed in; this script only counts, sums and decides. It runs once per charge on the hot path, so it keeps
  the number of Redis calls, arguments and reply bytes small: the rule configuration arrives as one JSON array
  (encoded once per process) and a new decision is answered with a short summary, not the whole record.

  Input:
    KEYS[1] decision key            rm:<ns>:dec:<eventId>             (string, JSON)
    KEYS[2] card window             rm:<ns>:u:{<userId>}:card:<hmac>   (zset member=event hash, score=occurredAt ms)
    KEYS[3] user day totals         rm:<ns>:u:{<userId>}:days          (hash "<date>" -> fen, "<date>#n" -> count)
    KEYS[4] decision stream         rm:<ns>:decisions
    KEYS[5] settlement due          rm:<ns>:settle:due                 (zset member=eventId, score=settleAt ms)
    KEYS[6] settlement stats        rm:<ns>:settle:stats               (hash)

    ARGV[1]  eventId                ARGV[2]  userId               ARGV[3]  merchantId
    ARGV[4]  amount (fen)           ARGV[5]  occurredAt (ms)      ARGV[6]  occurredAt (ISO, as sent)
    ARGV[7]  local date YYYY-MM-DD  ARGV[8]  local time HH:MM:SS  ARGV[9]  local second of day
    ARGV[10] window member (short hash of eventId)                ARGV[11] card label "****1234"
    ARGV[12] approve settleAt (ms)  ARGV[13] approve settleAt ISO
    ARGV[14] review settleAt (ms)   ARGV[15] review settleAt ISO
    ARGV[16] decidedAt ISO          ARGV[17] oldest local date to keep in the day totals
    ARGV[18] rule configuration, a JSON array:
             [1] burst window (ms)            [2] burst min count          [3] card window retention (ms)
             [4] night from (s of day)        [5] night to (s of day)      [6] night min amount (fen)
             [7] daily cap (fen)              [8] decision TTL (s)         [9] decision stream max length (approx.)
             [10] day totals TTL (s)          [11] burst window label      [12] night window label
             [13] config version

  Output:
    { 1, "<outcome> <settleAt ISO or -> <fired rules, comma-separated, or ->" } for a new decision,
    { 0, storedDecisionJson } for an eventId already decided.
]]
local rcall = redis.call

local stored = rcall("GET", KEYS[1])
if stored then
  return { 0, stored }
end

local cfg = cjson.decode(ARGV[18])
local amount = tonumber(ARGV[4])
local t = tonumber(ARGV[5])
local localDate = ARGV[7]

local function cny(fen)
  return string.format("%d.%02d", math.floor(fen / 100), fen % 100)
end

local rules = {}
local reasons = {}
local decline = false
local review = false

-- same_card_burst: charges on this card with occurredAt in (t - window, t], this one included, every outcome.
rcall("ZADD", KEYS[2], t, ARGV[10])
local cardCount = rcall("ZCOUNT", KEYS[2], "(" .. (t - cfg[1]), t)
rcall("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. (t - cfg[3]))
rcall("PEXPIRE", KEYS[2], cfg[3])
if cardCount >= cfg[2] then
  review = true
  rules[#rules + 1] = "same_card_burst"
  reasons[#reasons + 1] = string.format("%d charges on card %s within %s (review at %s or more)",
    cardCount, ARGV[11], cfg[11], cfg[2])
end

-- night_large_amount: local time in [from, to) (wrapping midnight) and amount at or above the threshold.
local sod = tonumber(ARGV[9])
local from = cfg[4]
local to = cfg[5]
local atNight
if from <= to then atNight = sod >= from and sod < to else atNight = sod >= from or sod < to end
if atNight and amount >= cfg[6] then
  decline = true
  rules[#rules + 1] = "night_large_amount"
  reasons[#reasons + 1] = string.format("%s CNY at %s local time, inside the night window %s (decline at %s CNY or more)",
    cny(amount), ARGV[8], cfg[12], cny(cfg[6]))
end

-- user_daily_cap: charges of this local day not declined and evaluated before this one, plus this one.
local dayCountField = localDate .. "#n"
local day = rcall("HMGET", KEYS[3], localDate, dayCountField)
local before = tonumber(day[1] or "0")
local cap = cfg[7]
if before + amount > cap then
  decline = true
  rules[#rules + 1] = "user_daily_cap"
  reasons[#reasons + 1] = string.format("day total on %s would be %s CNY (%s CNY before this charge), over the cap of %s CNY",
    localDate, cny(before + amount), cny(before), cny(cap))
end

local outcome = "approve"
if decline then outcome = "decline" elseif review then outcome = "review" end

local settleAt = "null"
local settleIso = "-"
if outcome ~= "decline" then
  -- The "#n" counts are what quota calibration reads (src/quota/accounts.ts): charges per day and idle days.
  rcall("HSET", KEYS[3], localDate, string.format("%d", before + amount),
    dayCountField, string.format("%d", tonumber(day[2] or "0") + 1))
  if not day[1] then
    -- Once per user-day: drop totals of days past retention, so the hash stays small, and push the expiry out.
    for _, field in ipairs(rcall("HKEYS", KEYS[3])) do
      if field < ARGV[17] then rcall("HDEL", KEYS[3], field) end
    end
    rcall("EXPIRE", KEYS[3], cfg[10])
  end

  if outcome == "approve" then
    rcall("ZADD", KEYS[5], ARGV[12], ARGV[1])
    rcall("HINCRBY", KEYS[6], "scheduledCount", 1)
    rcall("HINCRBY", KEYS[6], "scheduledAmount", amount)
    settleIso = ARGV[13]
  else
    rcall("ZADD", KEYS[5], ARGV[14], ARGV[1])
    rcall("HINCRBY", KEYS[6], "heldCount", 1)
    rcall("HINCRBY", KEYS[6], "heldAmount", amount)
    settleIso = ARGV[15]
  end
  settleAt = cjson.encode(settleIso)
end

local function jsonArray(items)
  if #items == 0 then return "[]" end
  local parts = {}
  for i, v in ipairs(items) do parts[i] = cjson.encode(v) end
  return "[" .. table.concat(parts, ",") .. "]"
end

local decision = "{\"eventId\":" .. cjson.encode(ARGV[1]) ..
  ",\"userId\":" .. cjson.encode(ARGV[2]) ..
  ",\"merchantId\":" .. cjson.encode(ARGV[3]) ..
  ",\"amount\":" .. ARGV[4] ..
  ",\"card\":" .. cjson.encode(ARGV[11]) ..
  ",\"occurredAt\":" .. cjson.encode(ARGV[6]) ..
  ",\"outcome\":\"" .. outcome .. "\"" ..
  ",\"rules\":" .. jsonArray(rules) ..
  ",\"reasons\":" .. jsonArray(reasons) ..
  ",\"observed\":{\"cardCount\":" .. cardCount .. ",\"dayTotalBefore\":" .. string.format("%d", before) ..
  ",\"localDate\":\"" .. localDate .. "\",\"localTime\":\"" .. ARGV[8] .. "\"}" ..
  ",\"settleAt\":" .. settleAt ..
  ",\"decidedAt\":\"" .. ARGV[16] .. "\"" ..
  ",\"configVersion\":\"" .. cfg[13] .. "\"}"

rcall("SET", KEYS[1], decision, "EX", cfg[8])
rcall("XADD", KEYS[4], "MAXLEN", "~", cfg[9], "*", "d", decision)
local fired = "-"
if #rules > 0 then fired = table.concat(rules, ",") end
return { 1, outcome .. " " .. settleIso .. " " .. fired }
