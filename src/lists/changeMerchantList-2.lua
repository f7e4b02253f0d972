--[[
  Changes one merchant's entries on the admission list and records the change, atomically.

  Input:
    KEYS[1] merchant list           rm:<ns>:lists:merchants            (hash merchantId -> JSON array of entries)
    KEYS[2] list history            rm:<ns>:lists:merchants:history    (stream, field "change": JSON)

    ARGV[1] merchantId
    ARGV[2] "add": ARGV[3] the entry (JSON object), appended
            "end": ARGV[3] now (ms), ARGV[4] now (ISO): entries in force are ended now (until = now), entries that
                   start later are dropped
    ARGV[5] the change record (JSON), appended to the history when something changed (with "ended": the count,
            for "end")

  Output: the number of entries added or ended (0: nothing changed, nothing recorded).
]]
local rcall = redis.call
local entries = {}
local stored = rcall("HGET", KEYS[1], ARGV[1])
if stored then entries = cjson.decode(stored) end

local changed = 0
if ARGV[2] == "add" then
  entries[#entries + 1] = cjson.decode(ARGV[3])
  changed = 1
else
  local now = tonumber(ARGV[3])
  local kept = {}
  for _, e in ipairs(entries) do
    local started = not e.fromMs or e.fromMs <= now
    local open = not e.untilMs or e.untilMs > now
    if not started then
      changed = changed + 1
    else
      if open then
        e.untilMs = now
        e["until"] = ARGV[4]
        changed = changed + 1
      end
      kept[#kept + 1] = e
    end
  end
  entries = kept
end

if changed == 0 then return 0 end
if #entries == 0 then
  rcall("HDEL", KEYS[1], ARGV[1])
else
  rcall("HSET", KEYS[1], ARGV[1], cjson.encode(entries))
end
local record = ARGV[5]
if ARGV[2] == "end" then
  local r = cjson.decode(record)
  r.ended = changed
  record = cjson.encode(r)
end
rcall("XADD", KEYS[2], "*", "change", record)
return changed
