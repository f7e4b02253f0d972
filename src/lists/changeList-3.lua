--[[
  Changes one listed id's entries on one of the lists (merchants, users, cards: src/lists/lists.ts) and records the
  change, atomically. Every change also drops the id's entries that ended before the horizon (no charge accepted now
  can be dated that far back), so an id's value stays small: the rules script decodes it on each call that meets
  the id. The change's history id is the id's version: the shards' copies take a version only over an older one
  (copyListEntry-2.lua), so copies made out of order end equal to the list.

  Input:
    KEYS[1] the list                rm:<ns>:{lists}:<kind>s            (hash id -> JSON array of entries; a card's
                                                                       id is its token, never its number)
    KEYS[2] its history             rm:<ns>:{lists}:<kind>s:history    (stream, field "change": JSON)
    KEYS[3] its versions            rm:<ns>:{lists}:<kind>s:versions   (hash id -> history id of its last change)

    ARGV[1] id (merchantId, userId or card token)
    ARGV[2] "add": ARGV[3] the entry (JSON object), appended
            "end": entries in force are ended now (until = now), entries that start later are dropped
    ARGV[4] now (ms)    ARGV[5] now (ISO)    ARGV[6] horizon (ms)    ARGV[7] most entries an id may have
    ARGV[8] the change record (JSON), appended to the history when something changed (with "ended": the count,
            for "end")

  Output: { changed, version, entries } : the number of entries added or ended (0: nothing changed, nothing
  recorded), the change's history id and the id's entries now ("" when none); or { -1 } when an add would give the
  id more than ARGV[7] entries (nothing changed).
]]
local rcall = redis.call
local now, horizon, most = tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[7])
local entries = {}
local stored = rcall("HGET", KEYS[1], ARGV[1])
if stored then
  for _, e in ipairs(cjson.decode(stored)) do
    if not e.untilMs or e.untilMs >= horizon then entries[#entries + 1] = e end
  end
end

local changed = 0
if ARGV[2] == "add" then
  if #entries >= most then return { -1 } end
  entries[#entries + 1] = cjson.decode(ARGV[3])
  changed = 1
else
  local kept = {}
  for _, e in ipairs(entries) do
    local started = not e.fromMs or e.fromMs <= now
    local open = not e.untilMs or e.untilMs > now
    if not started then
      changed = changed + 1
    else
      if open then
        e.untilMs = now
        e["until"] = ARGV[5]
        changed = changed + 1
      end
      kept[#kept + 1] = e
    end
  end
  entries = kept
end

if changed == 0 then return { 0 } end
local value = ""
if #entries == 0 then
  rcall("HDEL", KEYS[1], ARGV[1])
else
  value = cjson.encode(entries)
  rcall("HSET", KEYS[1], ARGV[1], value)
end
local record = ARGV[8]
if ARGV[2] == "end" then
  local r = cjson.decode(record)
  r.ended = changed
  record = cjson.encode(r)
end
local version = rcall("XADD", KEYS[2], "*", "change", record)
rcall("HSET", KEYS[3], ARGV[1], version)
return { changed, version, value }
