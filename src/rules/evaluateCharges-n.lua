--[[
  Evaluates every rule for a run of charges, one after the other in the order given, atomically: each decision
  is stored, appended to the decision stream and scheduled for settlement. A run of one charge decides exactly
  what a longer run decides for it (the benchmark and the tests compare the two). Exactly once per eventId: a
  charge whose decision exists changes nothing and gets the stored decision back (a redelivered job lands here).

  Calendar facts (local date, second of day, settlement instants) are computed by the caller in the configured
  zone and passed in; this script only counts, sums and decides. Each charge comes with its producer clock
  (contract v1.1): settlement never starts before it, and pruning is relative to it, never to the charge's own
  date (a charge dated far ahead cannot wipe the state the rules need). It is the hot path, so it keeps Redis calls per
  charge few: a user's whole rule state (day totals and card windows) is one small hash read with one HMGET and
  written with one HSET, and the settlement schedule and its running totals are written once per run.

  Input (the number of keys is 3 + 2 per charge):
    KEYS[1] decision stream         rm:<ns>:decisions
    KEYS[2] settlement due          rm:<ns>:settle:due                 (zset member=eventId, score=settleAt ms)
    KEYS[3] settlement stats        rm:<ns>:settle:stats               (hash)
    then for charges i = 1..n:
    KEYS[3+i]   decision key        rm:<ns>:dec:<eventId>              (string, JSON)
    KEYS[3+n+i] user rule state     rm:<ns>:u:{<userId>}:rules         (hash, see below)

    ARGV[1] rule configuration, a JSON array:
            [1] burst window (ms)            [2] burst min count          [3] card retention (ms): window + late
                                                                          tolerance + future skew
            [4] night from (s of day)        [5] night to (s of day)      [6] night min amount (fen)
            [7] daily cap (fen)              [8] decision TTL (s)         [9] decision stream max length (approx.)
            [10] rule state TTL (s)          [11] burst window label      [12] night window label
            [13] config version              [14] card window size above which it is thinned
    ARGV[2] decidedAt ISO
    ARGV[3] number of groups g, then g groups of 8 (charges of one local date and one clock date share a group;
            a late charge, whose clock is past its T+1 instant, has one of its own):
            local date YYYY-MM-DD of the charges, approve settleAt (ms), its ISO, review settleAt (ms), its ISO
            (the later of T+1 and the clock, + the hold), oldest local date to keep in the day totals, latest
            prune date that makes a prune due, the clock's local date
    then 5 per charge: eventId, userId, merchantId, card label "****1234", and the fields that hold no space,
            space-separated (fewer arguments cost less on both sides of the connection):
            "<amount (fen)> <occurredAt (ISO, as sent)> <occurredAt (ms, base 36)> <index of its group above>
            <local time HH:MM:SS> <local second of day> <card token> <clock (ms, base 36)> <plain>", where plain is
            1 when eventId, userId, merchantId and the card label hold nothing JSON escapes (control characters,
            '"', '\', '/'): the caller checks that much faster than a Lua pattern does)

  User rule state hash:
    "<date>"   -> fen of that local day's charges not declined
    "<date>#n" -> their count (quota calibration reads these: src/quota/accounts.ts)
    "c:<card token>" -> the card's charge times in time order, base-36 ms separated by spaces: those within the
                        card retention (burst window + late tolerance + future skew) of the card's newest charge, so a charge up
                        to the tolerance behind the clock sees its whole window; thinned above cfg[14] entries to
                        the burst-window buckets' oldest and newest minCount − 1 (see thinAbove in
                        charge-rules.ts), so a card's cost per charge is bounded whatever its traffic and the burst
                        outcome is unchanged (9 bytes each: up to 7 fit Redis's 64-byte listpack value limit; a
                        busier card makes the hash a hashtable, still correct)
    "p"      -> the clock's local date at the last prune
    A charge whose clock's local date is a week or more after the last prune prunes: the hash drops days past
    retention of the clock's date and card windows whose newest charge is past the retention of the clock, and
    its TTL (retention + a week, from now) is pushed out. So a busy user's hash stays small, and an idle one's
    expires at least the retention after its last charge, without a prune on every user's first charge of every
    day.

  Output, one string per charge, in order:
    "N<outcome> <settleAt ISO or -> <fired rules, comma-separated, or ->" for a new decision,
    "D<stored decision JSON>" for an eventId already decided,
    "E<error>" for a charge that failed here (its earlier writes stay; the caller dead-letters it).
]]
local rcall = redis.call

local cfg = cjson.decode(ARGV[1])
-- Numbers that go into Redis calls, as strings once: Redis formats a Lua number argument with "%.17g" every time.
local decisionTtl = string.format("%d", cfg[8])
local streamMaxLen = string.format("%d", cfg[9])
local stateTtl = string.format("%d", cfg[10])
local decidedAt = ARGV[2]
local groups = {}
local a = 4
for g = 1, tonumber(ARGV[3]) do
  groups[g] = { date = ARGV[a], approveAt = ARGV[a + 1], approveIso = ARGV[a + 2], reviewAt = ARGV[a + 3],
    reviewIso = ARGV[a + 4], oldestDay = ARGV[a + 5], pruneDue = ARGV[a + 6], clockDate = ARGV[a + 7] }
  a = a + 8
end
local firstCharge = a
local PER_CHARGE = 5
local charges = (#ARGV - firstCharge + 1) / PER_CHARGE

local function cny(fen)
  return string.format("%d.%02d", math.floor(fen / 100), fen % 100)
end

-- A JSON string; cjson only where something needs escaping (it escapes control characters, '"', '\' and '/').
local function json(s)
  if string.find(s, '[%c"\\/]') then return cjson.encode(s) end
  return '"' .. s .. '"'
end

-- For texts the caller found plain (nothing to escape).
local function quoted(s)
  return '"' .. s .. '"'
end

-- Keeps, per burst-window-long bucket, the minCount - 1 oldest and newest of a card's times (base-36 texts, in
-- time order): what any burst window can need (see the header).
local function thin(texts)
  local times = {}
  local sorted = true
  for j = 1, #texts do
    times[j] = tonumber(texts[j], 36)
    if j > 1 and times[j] < times[j - 1] then sorted = false end
  end
  if not sorted then
    -- A window an earlier version wrote in arrival order.
    local order = {}
    for j = 1, #texts do order[j] = j end
    table.sort(order, function(x, y) return times[x] < times[y] end)
    local t2, s2 = {}, {}
    for j = 1, #order do t2[j], s2[j] = texts[order[j]], times[order[j]] end
    texts, times = t2, s2
  end
  local width, keep = cfg[1], cfg[2] - 1
  local out = {}
  local j = 1
  while j <= #texts do
    local bucket = math.floor(times[j] / width)
    local k = j
    while k < #texts and math.floor(times[k + 1] / width) == bucket do k = k + 1 end
    for q = j, k do
      if q - j < keep or k - q < keep then out[#out + 1] = texts[q] end
    end
    j = k + 1
  end
  return out
end

-- The rules one charge fired, as its decision's JSON arrays and its summary (reset for every charge).
local rules, reasons, fired

local function fire(rule, reason)
  if fired == "" then
    rules, reasons, fired = '"' .. rule .. '"', json(reason), rule
  else
    rules, reasons, fired = rules .. ',"' .. rule .. '"', reasons .. "," .. json(reason), fired .. "," .. rule
  end
end

-- Decisions of the run so far, by decision key: a repeated eventId in one run is a duplicate too.
local decided = {}
local stored = rcall("MGET", unpack(KEYS, 4, 3 + charges))
-- Settlement writes of the whole run, done once at the end.
local due = {}
local scheduledCount, scheduledAmount, heldCount, heldAmount = 0, 0, 0, 0

local function evaluate(i)
  local decisionKey = KEYS[3 + i]
  local stateKey = KEYS[3 + charges + i]
  local earlier = decided[decisionKey] or stored[i]
  if earlier then return "D" .. earlier end

  local p = firstCharge + (i - 1) * PER_CHARGE
  local eventId = ARGV[p]
  local cardLabel = ARGV[p + 3]
  local amountText, occurredAt, t36, groupIndex, localTime, sodText, cardToken, clock36, plain =
    string.match(ARGV[p + 4], "^(%d+) (%S+) (%w+) (%d+) (%S+) (%d+) (%S+) (%w+) ([01])$")
  if not plain then error("malformed charge fields: " .. ARGV[p + 4]) end
  local amount = tonumber(amountText)
  local t = tonumber(t36, 36)
  local clock = tonumber(clock36, 36)
  local day = groups[tonumber(groupIndex)]
  local localDate = day.date
  local sod = tonumber(sodText)
  local cardField = "c:" .. cardToken
  local dayCountField = localDate .. "#n"
  local state = rcall("HMGET", stateKey, localDate, dayCountField, cardField, "p")

  rules, reasons, fired = "", "", ""
  local decline = false
  local review = false

  -- same_card_burst: charges on this card with occurredAt in (t - window, t], this one included, every outcome.
  -- The window keeps what the retention keeps of the card's newest charge (older ones can only matter to charges
  -- later than the tolerance), thinned when it grows past cfg[14].
  local windowFrom = t - cfg[1]
  local window = t36
  local cardCount = 1
  local tooLate = nil
  if state[3] then
    -- Times are kept in time order (this one goes in its place), so the newest is the last: one pass, one table.
    -- A window written in arrival order by an earlier version only makes keepFrom earlier (more kept, never less).
    local last = string.match(state[3], "(%w+)$")
    local newest = t
    if last and tonumber(last, 36) > t then newest = tonumber(last, 36) end
    local keepFrom = newest - cfg[3]
    -- Older than the window keeps behind the card's newest charge: its burst cannot be counted, so it is held.
    if t < keepFrom then tooLate = newest - t end
    local kept = {}
    local n = 0
    local placed = t < keepFrom
    for s in string.gmatch(state[3], "%S+") do
      local at = tonumber(s, 36)
      if at >= keepFrom then
        if not placed and at > t then
          n = n + 1
          kept[n] = t36
          placed = true
        end
        n = n + 1
        kept[n] = s
        if at > windowFrom and at <= t then cardCount = cardCount + 1 end
      end
    end
    if not placed then
      n = n + 1
      kept[n] = t36
    end
    if n > cfg[14] then kept = thin(kept) end
    window = table.concat(kept, " ")
  end
  if cardCount >= cfg[2] then
    review = true
    fire("same_card_burst", string.format("%d charges on card %s within %s (review at %s or more)", cardCount, cardLabel, cfg[11], cfg[2]))
  elseif tooLate then
    review = true
    fire("same_card_burst", string.format("charge %d min behind the newest charge on card %s, older than its window is kept: reviewed, its burst cannot be counted",
      math.floor(tooLate / 60000), cardLabel))
  end

  -- night_large_amount: local time in [from, to) (wrapping midnight) and amount at or above the threshold.
  local from = cfg[4]
  local to = cfg[5]
  local atNight
  if from <= to then atNight = sod >= from and sod < to else atNight = sod >= from or sod < to end
  if atNight and amount >= cfg[6] then
    decline = true
    fire("night_large_amount", string.format("%s CNY at %s local time, inside the night window %s (decline at %s CNY or more)",
      cny(amount), localTime, cfg[12], cny(cfg[6])))
  end

  -- user_daily_cap: charges of this local day not declined and evaluated before this one, plus this one.
  local beforeText = state[1] or "0"
  local before = tonumber(beforeText)
  local cap = cfg[7]
  if before + amount > cap then
    decline = true
    fire("user_daily_cap", string.format("day total on %s would be %s CNY (%s CNY before this charge), over the cap of %s CNY",
      localDate, cny(before + amount), cny(before), cny(cap)))
  end

  local outcome = "approve"
  if decline then outcome = "decline" elseif review then outcome = "review" end

  local prune = not state[4] or state[4] <= day.pruneDue
  if prune then
    -- Drop days past retention and card windows with nothing left in it, both as of the clock (never the
    -- charge's own date); the expiry is pushed out below.
    local idleBefore = clock - cfg[3]
    local fields = rcall("HGETALL", stateKey)
    local stale = {}
    for j = 1, #fields, 2 do
      local f = fields[j]
      local first = string.byte(f, 1)
      if first == 112 then -- "p"
      elseif first == 99 then -- "c:", a card window
        local newest = -1
        for s in string.gmatch(fields[j + 1], "%S+") do
          local at = tonumber(s, 36)
          if at > newest then newest = at end
        end
        if newest < idleBefore then stale[#stale + 1] = f end
      elseif f < day.oldestDay then
        stale[#stale + 1] = f
      end
    end
    -- HDEL in slices: unpack has a stack limit (a card-testing user may leave thousands of card windows).
    for s = 1, #stale, 1000 do
      rcall("HDEL", stateKey, unpack(stale, s, math.min(s + 999, #stale)))
    end
  end

  local settleAt = "null"
  local settleIso = "-"
  local pruned = state[4]
  if prune then pruned = day.clockDate end
  if outcome == "decline" then
    rcall("HSET", stateKey, cardField, window, "p", pruned)
  else
    rcall("HSET", stateKey, cardField, window, "p", pruned, localDate, string.format("%d", before + amount),
      dayCountField, string.format("%d", tonumber(state[2] or "0") + 1))
    if outcome == "approve" then
      due[#due + 1] = day.approveAt
      scheduledCount = scheduledCount + 1
      scheduledAmount = scheduledAmount + amount
      settleIso = day.approveIso
    else
      due[#due + 1] = day.reviewAt
      heldCount = heldCount + 1
      heldAmount = heldAmount + amount
      settleIso = day.reviewIso
    end
    due[#due + 1] = eventId
    settleAt = '"' .. settleIso .. '"'
  end
  -- After the write: EXPIRE on a key that does not exist yet would do nothing.
  if prune then rcall("EXPIRE", stateKey, stateTtl) end

  local text = json
  if plain == "1" then text = quoted end
  local decision = '{"eventId":' .. text(eventId) ..
    ',"userId":' .. text(ARGV[p + 1]) ..
    ',"merchantId":' .. text(ARGV[p + 2]) ..
    ',"amount":' .. amountText ..
    ',"card":' .. text(cardLabel) ..
    ',"occurredAt":"' .. occurredAt ..
    '","outcome":"' .. outcome ..
    '","rules":[' .. rules ..
    '],"reasons":[' .. reasons ..
    '],"observed":{"cardCount":' .. string.format("%d", cardCount) .. ',"dayTotalBefore":' .. beforeText ..
    ',"localDate":"' .. localDate .. '","localTime":"' .. localTime ..
    '"},"settleAt":' .. settleAt ..
    ',"decidedAt":"' .. decidedAt ..
    '","configVersion":"' .. cfg[13] .. '"}'

  rcall("SET", decisionKey, decision, "EX", decisionTtl)
  rcall("XADD", KEYS[1], "*", "d", decision)
  decided[decisionKey] = decision
  if fired == "" then fired = "-" end
  return "N" .. outcome .. " " .. settleIso .. " " .. fired
end

local replies = {}
local wrote = false
for i = 1, charges do
  local ok, reply = pcall(evaluate, i)
  if not ok then
    local message = type(reply) == "table" and reply.err or tostring(reply)
    -- Redis refuses a script's first write when out of memory or read-only (never a later one): while nothing
    -- is written yet, fail the whole run so the caller retries it, rather than call these charges "failed".
    -- (MISCONF, a failing RDB save, is not retried here: those charges are dead-lettered and can be replayed.)
    if not wrote and (string.find(message, "^OOM") or string.find(message, "^READONLY") or string.find(message, "^NOREPLICAS")) then
      error(reply)
    end
    reply = "E" .. message
  end
  if string.byte(reply, 1) == 78 then wrote = true end -- "N": a new decision was written
  replies[i] = reply
end

-- The stream is capped once per run, not per XADD (three fewer arguments per charge; "~" trims whole nodes anyway).
if wrote then rcall("XTRIM", KEYS[1], "MAXLEN", "~", streamMaxLen) end

-- ZADD in slices: unpack has a stack limit.
for s = 1, #due, 1000 do
  rcall("ZADD", KEYS[2], unpack(due, s, math.min(s + 999, #due)))
end
if scheduledCount > 0 then
  rcall("HINCRBY", KEYS[3], "scheduledCount", scheduledCount)
  rcall("HINCRBY", KEYS[3], "scheduledAmount", scheduledAmount)
end
if heldCount > 0 then
  rcall("HINCRBY", KEYS[3], "heldCount", heldCount)
  rcall("HINCRBY", KEYS[3], "heldAmount", heldAmount)
end
return replies
