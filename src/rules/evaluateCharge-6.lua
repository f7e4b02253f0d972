--[[
  Evaluates every rule for one charge atomically, stores the decision, appends it to the decision stream and
  schedules its settlement. Exactly once per eventId: a charge whose decision exists changes nothing and gets the
  stored decision back (a redelivered job after a worker crash lands here).

  Calendar facts (local date, local time, settlement instants) are computed by the caller in the configured zone
  and passed in; this script only counts, sums and decides.

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
    ARGV[12] burst window (ms)      ARGV[13] burst min count      ARGV[14] card window retention (ms)
    ARGV[15] night from (s of day)  ARGV[16] night to (s of day)  ARGV[17] night min amount (fen)
    ARGV[18] daily cap (fen)
    ARGV[19] approve settleAt (ms)  ARGV[20] approve settleAt ISO
    ARGV[21] review settleAt (ms)   ARGV[22] review settleAt ISO
    ARGV[23] decidedAt ISO          ARGV[24] config version       ARGV[25] decision TTL (s)
    ARGV[26] decision stream max length (approximate)
    ARGV[27] oldest local date to keep in the day totals          ARGV[28] day totals TTL (s)
    ARGV[29] burst window label     ARGV[30] night window label

  Output:
    { 1, decisionJson } for a new decision, { 0, storedDecisionJson } for an eventId already decided.
]]
local rcall = redis.call

local stored = rcall("GET", KEYS[1])
if stored then
  return { 0, stored }
end

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
local cardCount = rcall("ZCOUNT", KEYS[2], "(" .. (t - tonumber(ARGV[12])), t)
rcall("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. (t - tonumber(ARGV[14])))
rcall("PEXPIRE", KEYS[2], ARGV[14])
if cardCount >= tonumber(ARGV[13]) then
  review = true
  rules[#rules + 1] = "same_card_burst"
  reasons[#reasons + 1] = string.format("%d charges on card %s within %s (review at %s or more)",
    cardCount, ARGV[11], ARGV[29], ARGV[13])
end

-- night_large_amount: local time in [from, to) (wrapping midnight) and amount at or above the threshold.
local sod = tonumber(ARGV[9])
local from = tonumber(ARGV[15])
local to = tonumber(ARGV[16])
local atNight
if from <= to then atNight = sod >= from and sod < to else atNight = sod >= from or sod < to end
if atNight and amount >= tonumber(ARGV[17]) then
  decline = true
  rules[#rules + 1] = "night_large_amount"
  reasons[#reasons + 1] = string.format("%s CNY at %s local time, inside the night window %s (decline at %s CNY or more)",
    cny(amount), ARGV[8], ARGV[30], cny(tonumber(ARGV[17])))
end

-- user_daily_cap: charges of this local day not declined and evaluated before this one, plus this one.
local before = tonumber(rcall("HGET", KEYS[3], localDate) or "0")
local cap = tonumber(ARGV[18])
if before + amount > cap then
  decline = true
  rules[#rules + 1] = "user_daily_cap"
  reasons[#reasons + 1] = string.format("day total on %s would be %s CNY (%s CNY before this charge), over the cap of %s CNY",
    localDate, cny(before + amount), cny(before), cny(cap))
end

local outcome = "approve"
if decline then outcome = "decline" elseif review then outcome = "review" end

local settleAt = "null"
if outcome ~= "decline" then
  local firstOfDay = rcall("HEXISTS", KEYS[3], localDate) == 0
  rcall("HINCRBY", KEYS[3], localDate, amount)
  -- The "#n" counts are what quota calibration reads (src/quota/accounts.ts): charges per day and idle days.
  rcall("HINCRBY", KEYS[3], localDate .. "#n", 1)
  if firstOfDay then
    -- Once per user-day: drop totals of days past retention, so the hash stays small.
    for _, field in ipairs(rcall("HKEYS", KEYS[3])) do
      if field < ARGV[27] then rcall("HDEL", KEYS[3], field) end
    end
  end
  rcall("EXPIRE", KEYS[3], ARGV[28])

  if outcome == "approve" then
    rcall("ZADD", KEYS[5], ARGV[19], ARGV[1])
    rcall("HINCRBY", KEYS[6], "scheduledCount", 1)
    rcall("HINCRBY", KEYS[6], "scheduledAmount", amount)
    settleAt = cjson.encode(ARGV[20])
  else
    rcall("ZADD", KEYS[5], ARGV[21], ARGV[1])
    rcall("HINCRBY", KEYS[6], "heldCount", 1)
    rcall("HINCRBY", KEYS[6], "heldAmount", amount)
    settleAt = cjson.encode(ARGV[22])
  end
end

local function jsonArray(items)
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
  ",\"decidedAt\":\"" .. ARGV[23] .. "\"" ..
  ",\"configVersion\":\"" .. ARGV[24] .. "\"}"

rcall("SET", KEYS[1], decision, "EX", ARGV[25])
rcall("XADD", KEYS[4], "MAXLEN", "~", ARGV[26], "*", "d", decision)
return { 1, decision }
