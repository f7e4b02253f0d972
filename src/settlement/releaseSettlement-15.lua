--[[
  Settles one due transaction into the Fenfu ledger of the run's date, with its fees, exactly once per eventId.

  The run's date is the local date of the instant the run is for (the worker's tick, or `release --now X`), never
  the date of the transaction's due score: a late release is filed on the day it is really paid. Exactly once: the
  due entry and its settlement info are taken in the call that pays, so two workers releasing the same transaction,
  or a retry after a crash, change nothing the second time. A charge is scheduled once: its charge record (the
  dedupe, kept longer than any event can be accepted) stops a second decision. The fees are the caller's
  (src/settlement/fees.ts), computed from the settlement info it read: a call whose info is not that any more
  changes nothing.

  A charge whose case is open (src/cases/) is paid only when its case lets it: the due score of a held charge is its
  case's deadline, and a run that finds the case still open applies the configured default, recorded on the case:
  auto_release (closed and paid in this call) or extend (the deadline, and the due score, move by the extension
  until the maximum past the first deadline, then auto_release). A case above the four-eyes amount, one pending
  approval and one frozen by a complaint are never paid here: their due score becomes +inf until a person decides;
  one an analyst holds is not auto-released under them (due again when the lock expires).

  Input:
    KEYS[1] settlement due         rm:<ns>:{s<n>}:settle:due                     (zset member=eventId, score=settleAt ms)
    KEYS[2] ledger                 rm:<ns>:{s<n>}:fenfu:ledger:<date>            (hash "<merchant>\t<count|amount|base|tech|net|tier>")
    KEYS[3] ledger dates           rm:<ns>:{s<n>}:fenfu:dates                    (set)
    KEYS[4] settlement stats       rm:<ns>:{s<n>}:settle:stats                   (hash)
    KEYS[5] settlement info        rm:<ns>:{s<n>}:settle:info                    (hash eventId -> "merchant\tamount\tkind", kind
                                   scheduled, held, or reversal: a refund of a paid charge, the amount paid back)
    KEYS[6] settlement log         rm:<ns>:{s<n>}:fenfu:settlements              (stream: each settlement, for the archive:
                                   s eventId, on date, at ms, m merchant, k scheduled|held|reversal, g gross (negative for
                                   a reversal), tier, base, tech, net, oc the due instant ms (a reversal's: its refund's time))
    KEYS[7] merchant volume        rm:<ns>:{s<n>}:fenfu:volume:<YYYY-MM>         (hash merchant -> gross of the month's dates)
    KEYS[8] closed dates           rm:<ns>:{s<n>}:fenfu:closed                   (set of dates reconciled, YYYY-MM-DD, and of months
                                   whose volume the next month's tiers were computed from, YYYY-MM: nothing more is paid in)
    KEYS[9…15] cases, case of each charge, case queue, case locks, case approvals, closed cases, case log
                                   rm:<ns>:{s<n>}:cases…                      (src/redis/keys.ts, src/cases/case-record.lua)

    ARGV[1] eventId
    ARGV[2] settlement date YYYY-MM-DD (local date of the run's instant; KEYS[2] is its ledger)
    ARGV[3] the run's instant, ms: only a transaction due at or before it is settled
    ARGV[4] approximate cap of the settlement log (the archiver trims it below what it has archived)
    ARGV[5] the settlement info the fees were computed from
    ARGV[6] tier   ARGV[7] base fee (fen)   ARGV[8] technical fee (fen)   ARGV[9] net (fen)
    ARGV[10] what an open case gets at its deadline: auto_release or extend   ARGV[11] the extension, ms
    ARGV[12] the longest extension past the first deadline, ms   ARGV[13] the four-eyes amount, fen
    ARGV[14] approximate cap of the case log

  Output:
    {1, gross, opened} settled now (fen; negative for a reversal); `opened` is the instant (ms) its case was opened
                       when the case was auto-released by this call, else 0
    {-4, what}         its case kept it: "extended" (due again at the new deadline), "locked" (an analyst holds it:
                       due again when the lock expires) or "waiting" (for a person)
     0                 not due (any more): already released by another run, or rescheduled after the run's instant
    -1                 its settlement info is missing or unreadable (left in place)
    -3                 its settlement info changed since the fees were computed from it (left for the next run)
    -2                 the date is closed (its reconciliation files are written), or its month is (the next month's
                       tiers are computed): left in place for the next date
]]
local rcall = redis.call
--- @include ../cases/case-record.lua
local eventId = ARGV[1]
if rcall("SISMEMBER", KEYS[8], ARGV[2]) == 1 or rcall("SISMEMBER", KEYS[8], string.sub(ARGV[2], 1, 7)) == 1 then
  return -2
end
local score = rcall("ZSCORE", KEYS[1], eventId)
if not score or tonumber(score) > tonumber(ARGV[3]) then
  return 0
end
local info = rcall("HGET", KEYS[5], eventId)
if not info then
  return -1
end
if info ~= ARGV[5] then
  -- Changed since it was read (a refund of the unpaid charge): the next run pays what it says now.
  return -3
end
local merchant, amountText, kind = string.match(info, "^(.*)\t(%d+)\t(%a+)$")
if not kind then
  return -1
end
local amount = tonumber(amountText)
local autoReleased = 0
if kind ~= "reversal" then
  local K = { cases = KEYS[9], byCharge = KEYS[10], queue = KEYS[11], locks = KEYS[12], approvals = KEYS[13], closed = KEYS[14], log = KEYS[15] }
  local caseId = rcall("HGET", K.byCharge, eventId)
  local case = caseId and loadCase(K, caseId)
  if case and case.status ~= "closed" then
    local nowMs, logMaxLen = tonumber(ARGV[3]), ARGV[14]
    if case.frozen or case.status == "pending_approval" or case.amount > tonumber(ARGV[13]) then
      rcall("ZADD", KEYS[1], "+inf", eventId)
      if not case.waiting then
        case.waiting = true
        saveCase(K, case, "deadline_waiting", "system", nowMs, "", logMaxLen)
      end
      return { -4, "waiting" }
    end
    local latest = case.firstDeadlineMs + tonumber(ARGV[12])
    if ARGV[10] == "extend" and case.deadlineMs < latest then
      -- From the deadline, not from the run: a late run does not hold it longer (a deadline still past is extended
      -- again by the caller's next call, up to the maximum).
      case.deadlineMs = math.min(case.deadlineMs + tonumber(ARGV[11]), latest)
      case.extensions = (case.extensions or 0) + 1
      rcall("ZADD", KEYS[1], case.deadlineMs, eventId)
      rcall("ZADD", K.queue, "XX", case.deadlineMs, case.id)
      saveCase(K, case, "extended", "system", nowMs, "", logMaxLen)
      return { -4, "extended" }
    end
    if case.lockedBy and (case.lockedUntilMs or 0) > nowMs then
      -- An analyst holds it now: not paid under them; due again when the lock expires, if they have not decided.
      rcall("ZADD", KEYS[1], case.lockedUntilMs, eventId)
      return { -4, "locked" }
    end
    autoReleased = case.openedAtMs
    closeCase(K, case, "auto_released", "auto_released", "system", nowMs, "", logMaxLen)
  end
end
-- A reversal (a refund of a paid charge) pays the refunded part back: a row of negative gross and fees.
local gross = amount
if kind == "reversal" then gross = -amount end
local grossText = string.format("%d", gross)
rcall("ZREM", KEYS[1], eventId)
rcall("HDEL", KEYS[5], eventId)
rcall("HINCRBY", KEYS[4], kind .. "Count", -1)
rcall("HINCRBY", KEYS[4], kind .. "Amount", -amount)
rcall("HINCRBY", KEYS[2], merchant .. "\tcount", 1)
rcall("HINCRBY", KEYS[2], merchant .. "\tamount", grossText)
rcall("HINCRBY", KEYS[2], merchant .. "\tbase", ARGV[7])
rcall("HINCRBY", KEYS[2], merchant .. "\ttech", ARGV[8])
rcall("HINCRBY", KEYS[2], merchant .. "\tnet", ARGV[9])
rcall("HSET", KEYS[2], merchant .. "\ttier", ARGV[6])
rcall("HINCRBY", KEYS[7], merchant, grossText)
rcall("SADD", KEYS[3], ARGV[2])
rcall("HINCRBY", KEYS[4], "settledCount", 1)
rcall("HINCRBY", KEYS[4], "settledAmount", grossText)
rcall("XADD", KEYS[6], "MAXLEN", "~", ARGV[4], "*", "s", eventId, "on", ARGV[2], "at", ARGV[3], "m", merchant, "k", kind,
  "g", grossText, "tier", ARGV[6], "base", ARGV[7], "tech", ARGV[8], "net", ARGV[9], "oc", score)
return {1, gross, autoReleased}
