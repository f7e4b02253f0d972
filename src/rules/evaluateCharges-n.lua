--[[
  Evaluates every rule for a run of charges, one after the other in the order given, atomically: each decision
  is stored, appended to the decision stream and scheduled for settlement, and the charge's record (its dedupe,
  src/decisions/charge-record.ts) is written into its record hash. A run of one charge decides exactly
  what a longer run decides for it (the benchmark and the tests compare the two). Exactly once per eventId: a
  charge whose record exists changes nothing and gets the record back (a redelivered job lands here).

  This file is the core; script.ts splices the rules' Lua fragments into it at the "--- @rules <section>" lines,
  in registry order, once per process. A fragment (src/rules/<rule>.lua) has these parts, all optional:
    --- @key <name>                 a key the caller passes once per call (the module's keys()); KEY_<name> here
    --- @userkey <name>             a key of the charge's user the caller passes per charge (the module's
                                    userKeys()); KEY_<name> in the per-charge sections
    --- @setup                      code run once per call, before the charges (locals are the fragment's)
    --- @read <var> <field expr>    a field of the user's rule-state hash, read with the one HMGET per charge:
                                    <var>Field is its name, <var> its value (nil when absent)
    --- @keeps <var> ...            locals its check sets for what follows (writes, observed)
    --- @check                      per charge: decide; fire(rule, reason) when it fires (its own locals stay inside)
    --- @write all|counted <var> = <value expr>
                                    HSET <var>Field after the decision: "all" for every outcome, "counted" unless
                                    declined (a declined charge adds nothing to what is counted)
    --- @counted                    per charge, after the state write, unless declined: writes of its own keys
    --- @observed <name> <json expr>  a field of the decision's "observed" object
    --- @record <string expr>      flags the charge record carries for later scripts (a refund), e.g. "c"
    --- @finish                     code run once per call, after every charge (totals of the run)
    --- @prune <when expr>          per field f (value v) of the hash when it is pruned: the fields this rule owns
                                    (<when expr> true); add stale ones with stale[#stale + 1] = f
  A rule decided before the call (night window) has no fragment: its reason comes in the call (pre-decided
  firings below) and is listed in its place.

  Calendar facts (local date, second of day, settlement instants) are computed by the caller in the configured
  zone and passed in; this script only counts, sums and decides. Each charge comes with its producer clock
  (contract v1.1): settlement never starts before it, and pruning is relative to it, never to the charge's own
  date (a charge dated far ahead cannot wipe the state the rules need). It is the hot path, so it keeps Redis calls
  per charge few: a user's whole rule state is one small hash read with one HMGET and written with one HSET, and
  the settlement schedule and its running totals are written once per run.

  Input (the number of keys is 8 + the rules' keys + (3 + the rules' user keys) per charge):
    KEYS[1] decision stream         rm:<ns>:{s<n>}:decisions
    KEYS[2] settlement due          rm:<ns>:{s<n>}:settle:due                 (zset member=eventId, score=settleAt ms)
    KEYS[3] settlement stats        rm:<ns>:{s<n>}:settle:stats               (hash)
    KEYS[4] settlement info         rm:<ns>:{s<n>}:settle:info                (hash eventId -> "merchant\tamount\tkind")
    KEYS[5] cases                   rm:<ns>:{s<n>}:cases                      (hash case id -> case JSON, src/cases/case.ts)
    KEYS[6] case of each charge     rm:<ns>:{s<n>}:cases:bycharge             (hash chargeId -> case id)
    KEYS[7] case queue              rm:<ns>:{s<n>}:cases:queue                (zset case id -> deadline ms)
    KEYS[8] case log                rm:<ns>:{s<n>}:cases:log                  (stream of case actions)
    then the rules' keys (@key, in registry order), then for charges i = 1..n:
    KEYS[r+i]    decision key       rm:<ns>:{s<n>}:dec:<eventId>              (string, JSON: the whole decision)
    KEYS[r+n+i]  user rule state    rm:<ns>:{s<n>}:u:{<userId>}:rules         (hash: "p" and the rules' fields)
    KEYS[r+2n+i] charge records     rm:<ns>:{s<n>}:rec:<generation>:<part>    (hash eventId -> charge record)
    then one block of n keys per @userkey of the rules (registry order): KEYS[r+(3+b)n+i], e.g. the account

    ARGV[1] configuration, a JSON object: decisionTtl (s), streamMaxLen (approx.), stateTtl (s), recordTtl (s, of a
            record hash from its creation), version, and
            rules: { <configKey>: what the rule's scriptConfig() gives }
    ARGV[2] decidedAt: "<ISO> <ms>"
    ARGV[3] number of groups g, then g groups of 11 (charges of one local date and one clock date share a group;
            a late charge, whose clock is past its T+1 instant, has one of its own):
            local date YYYY-MM-DD of the charges, approve settleAt (ms), its ISO, review settleAt (ms), its ISO
            (the later of T+1 and the clock, + the hold), oldest local date to keep in the day totals, latest
            prune date that makes a prune due, the clock's local date, approve and review settleAt in base 36,
            the local date as YYYYMMDD
    then the number of pre-decided firings m, then m triples: index of the charge (1..n), rule name, reason
    then 5 per charge: eventId, userId, merchantId, card label "****1234", and the fields that hold no space,
            space-separated (fewer arguments cost less on both sides of the connection):
            "<amount (fen)> <occurredAt (ISO, as sent)> <occurredAt (ms, base 36)> <index of its group above>
            <local time HH:MM:SS> <local second of day> <card token> <clock (ms, base 36)> <plain>", where plain is
            1 when eventId, userId, merchantId and the card label hold nothing JSON escapes (control characters,
            '"', '\', '/'): the caller checks that much faster than a Lua pattern does)

  User rule state hash: the rules' fields (see their fragments) and
    "p"      -> the clock's local date at the last prune
    A charge whose clock's local date is a week or more after the last prune prunes: each rule drops its stale
    fields, a field no rule owns any more is dropped, and the TTL (retention + a week, from now) is pushed out. So
    a busy user's hash stays small, and an idle one's expires at least the retention after its last charge, without
    a prune on every user's first charge of every day. (Charge records expire with their hash, a generation.)

  Output, one string per charge, in order:
    "N<outcome> <settleAt ISO or -> <fired rules, comma-separated, or ->" for a new decision,
    "D<charge record>" for an eventId already decided (src/decisions/charge-record.ts); one decided for another
            user is an error ("E"),
    "E<error>" for a charge that failed here (its earlier writes stay; the caller dead-letters it).
]]
local rcall = redis.call

local cfg = cjson.decode(ARGV[1])
-- Numbers that go into Redis calls, as strings once: Redis formats a Lua number argument with "%.17g" every time.
local decisionTtl = string.format("%d", cfg.decisionTtl)
local streamMaxLen = string.format("%d", cfg.streamMaxLen)
local stateTtl = string.format("%d", cfg.stateTtl)
local recordTtl = string.format("%d", cfg.recordTtl)
local configVersion = cfg.version
local decidedAt, decidedMs = string.match(ARGV[2], "^(%S+) (%d+)$")
local groups = {}
local a = 4
for g = 1, tonumber(ARGV[3]) do
  groups[g] = { date = ARGV[a], approveAt = ARGV[a + 1], approveIso = ARGV[a + 2], reviewAt = ARGV[a + 3],
    reviewIso = ARGV[a + 4], oldestDay = ARGV[a + 5], pruneDue = ARGV[a + 6], clockDate = ARGV[a + 7],
    approve36 = ARGV[a + 8], review36 = ARGV[a + 9], digits = ARGV[a + 10] }
  a = a + 11
end
-- Pre-decided firings, by charge index then rule name.
local preFired = {}
local firings = tonumber(ARGV[a])
a = a + 1
for _ = 1, firings do
  local i = tonumber(ARGV[a])
  preFired[i] = preFired[i] or {}
  preFired[i][ARGV[a + 1]] = ARGV[a + 2]
  a = a + 3
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

-- The rules one charge fired, as its decision's JSON arrays, its summary and its record's codes, and the outcomes
-- they force (reset for every charge).
local rules, reasons, fired, codes, decline, review

--- @rules outcomes
local firstDecisionKey = #KEYS - (3 + USER_KEYS) * charges + 1
local firstUserKey = firstDecisionKey + 3 * charges

local function fire(rule, reason)
  if OUTCOMES[rule] == "decline" then decline = true else review = true end
  if fired == "" then
    rules, reasons, fired, codes = '"' .. rule .. '"', json(reason), rule, CODES[rule]
  else
    rules, reasons, fired, codes = rules .. ',"' .. rule .. '"', reasons .. "," .. json(reason), fired .. "," .. rule, codes .. CODES[rule]
  end
end

--- @rules setup

-- Records of the run so far, by eventId: a repeated eventId in one run is a duplicate too (its user is the same:
-- the claim holds the user).
local decided = {}
-- Record hashes given their expiry in this call (once each: EXPIRE … NX, set when the hash is created).
local expiring = {}
-- Settlement writes of the whole run, done once at the end.
local due = {}
local info = {}
local scheduledCount, scheduledAmount, heldCount, heldAmount = 0, 0, 0, 0
-- Cases opened by the run's review decisions (id -> JSON, charge -> id, id -> deadline), written once at the end.
local cases, caseOfCharge, caseQueue = {}, {}, {}

local function evaluate(i)
  local decisionKey = KEYS[firstDecisionKey - 1 + i]
  local stateKey = KEYS[firstDecisionKey - 1 + charges + i]
  local recordKey = KEYS[firstDecisionKey - 1 + 2 * charges + i]
  local p = firstCharge + (i - 1) * PER_CHARGE
  local eventId = ARGV[p]
  local earlier = decided[eventId] or rcall("HGET", recordKey, eventId)
  if earlier then
    -- The record ends with its user: an eventId another user's charge holds is not this charge's duplicate.
    -- Fields are separated by single spaces (none holds one: the merchant's are escaped).
    if string.match(earlier, "^[^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ (.*)$") ~= ARGV[p + 1] then
      return "Ean earlier charge of another user was decided with this eventId"
    end
    return "D" .. earlier
  end

  local merchantId = ARGV[p + 2]
  local cardLabel = ARGV[p + 3]
  local amountText, occurredAt, t36, groupIndex, localTime, sodText, cardToken, clock36, plain =
    string.match(ARGV[p + 4], "^(%d+) (%S+) (%w+) (%d+) (%S+) (%d+) (%S+) (%w+) ([01])$")
  if not plain then error("malformed charge fields: " .. ARGV[p + 4]) end
  local amount = tonumber(amountText)
  local t = tonumber(t36, 36)
  local clock = tonumber(clock36, 36)
  local day = groups[tonumber(groupIndex)]
  local localDate = day.date
  local pre = preFired[i]
--- @rules user keys

--- @rules read

  rules, reasons, fired, codes, decline, review = "", "", "", "", false, false

--- @rules check

  local outcome = "approve"
  if decline then outcome = "decline" elseif review then outcome = "review" end

  local prune = not pruned or pruned <= day.pruneDue
  if prune then
    -- Each rule drops its stale fields, as of the clock (never the charge's own date); the expiry is pushed out
    -- below.
    local fields = rcall("HGETALL", stateKey)
    local stale = {}
    for j = 1, #fields, 2 do
      local f, v = fields[j], fields[j + 1]
      if f == "p" then
--- @rules prune
      else
        stale[#stale + 1] = f
      end
    end
    -- HDEL in slices: unpack has a stack limit (a card-testing user may leave thousands of card windows).
    for s = 1, #stale, 1000 do
      rcall("HDEL", stateKey, unpack(stale, s, math.min(s + 999, #stale)))
    end
    pruned = day.clockDate
  end

  local settleAt = "null"
  local settleIso = "-"
  local settle36 = "-"
  if outcome == "decline" then
--- @rules write declined
  else
--- @rules write counted
--- @rules counted
    local kind
    if outcome == "approve" then
      due[#due + 1] = day.approveAt
      scheduledCount = scheduledCount + 1
      scheduledAmount = scheduledAmount + amount
      settleIso, settle36, kind = day.approveIso, day.approve36, "\tscheduled"
    else
      due[#due + 1] = day.reviewAt
      heldCount = heldCount + 1
      heldAmount = heldAmount + amount
      settleIso, settle36, kind = day.reviewIso, day.review36, "\theld"
    end
    due[#due + 1] = eventId
    info[#info + 1] = eventId
    info[#info + 1] = merchantId .. "\t" .. amountText .. kind
    settleAt = '"' .. settleIso .. '"'
  end
  local flags = ""
--- @rules record
  if flags == "" then flags = "-" end
  if codes == "" then codes = "-" end
  -- The merchant as one word (a refund of the paid charge reverses it in the merchant's ledger): "%" and " " escaped.
  local merchantWord = merchantId
  if string.find(merchantWord, "[ %%]") then
    merchantWord = string.gsub(merchantWord, "[ %%]", function(c) return string.format("%%%02X", string.byte(c)) end)
  end
  local record = string.sub(outcome, 1, 1) .. amountText .. " " .. settle36 .. " " .. day.digits .. " " .. flags .. " " ..
    codes .. " " .. merchantWord .. " " .. ARGV[p + 1]
  rcall("HSET", recordKey, eventId, record)
  if not expiring[recordKey] then
    rcall("EXPIRE", recordKey, recordTtl, "NX")
    expiring[recordKey] = true
  end
  -- After the write: EXPIRE on a key that does not exist yet would do nothing.
  if prune then rcall("EXPIRE", stateKey, stateTtl) end

  local text = json
  if plain == "1" then text = quoted end
  local decision = '{"eventId":' .. text(eventId) ..
    ',"userId":' .. text(ARGV[p + 1]) ..
    ',"merchantId":' .. text(merchantId) ..
    ',"amount":' .. amountText ..
    ',"card":' .. text(cardLabel) ..
    ',"occurredAt":"' .. occurredAt ..
    '","outcome":"' .. outcome ..
    '","rules":[' .. rules ..
    '],"reasons":[' .. reasons ..
    '],"observed":{' ..
--- @rules observed
    '"localDate":"' .. localDate .. '","localTime":"' .. localTime ..
    '"},"settleAt":' .. settleAt ..
    ',"decidedAt":"' .. decidedAt ..
    '","configVersion":"' .. configVersion .. '"}'

  rcall("SET", decisionKey, decision, "EX", decisionTtl)
  rcall("XADD", KEYS[1], "*", "d", decision)
  if outcome == "review" then
    -- Every review decision opens a case that holds its settlement until a person (or its deadline) decides.
    local id = text(eventId)
    local case = '{"id":' .. id .. ',"chargeId":' .. id .. ',"userId":' .. text(ARGV[p + 1]) .. ',"merchantId":' ..
      text(merchantId) .. ',"amount":' .. amountText .. ',"credit":' .. tostring(string.find(flags, "c", 1, true) ~= nil) ..
      ',"localDate":"' .. localDate .. '","t1Ms":' .. day.approveAt .. ',"deadlineMs":' .. day.reviewAt ..
      ',"firstDeadlineMs":' .. day.reviewAt .. ',"status":"open","opened":"review","openedAtMs":' .. decidedMs ..
      ',"rules":[' .. rules .. '],"paid":false,"frozen":false,"extensions":0,"seq":1}'
    cases[#cases + 1] = eventId
    cases[#cases + 1] = case
    caseOfCharge[#caseOfCharge + 1] = eventId
    caseOfCharge[#caseOfCharge + 1] = eventId
    caseQueue[#caseQueue + 1] = day.reviewAt
    caseQueue[#caseQueue + 1] = eventId
    rcall("XADD", KEYS[8], "MAXLEN", "~", streamMaxLen, "*", "c", eventId, "n", "1", "a", "opened", "by", "system", "at", decidedMs, "case", case)
  end
  decided[eventId] = record
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
  rcall("HSET", KEYS[4], unpack(info, s, math.min(s + 999, #info)))
end
for s = 1, #cases, 1000 do
  rcall("HSET", KEYS[5], unpack(cases, s, math.min(s + 999, #cases)))
  rcall("HSET", KEYS[6], unpack(caseOfCharge, s, math.min(s + 999, #caseOfCharge)))
  rcall("ZADD", KEYS[7], unpack(caseQueue, s, math.min(s + 999, #caseQueue)))
end
if scheduledCount > 0 then
  rcall("HINCRBY", KEYS[3], "scheduledCount", scheduledCount)
  rcall("HINCRBY", KEYS[3], "scheduledAmount", scheduledAmount)
end
if heldCount > 0 then
  rcall("HINCRBY", KEYS[3], "heldCount", heldCount)
  rcall("HINCRBY", KEYS[3], "heldAmount", heldAmount)
end

--- @rules finish
return replies
