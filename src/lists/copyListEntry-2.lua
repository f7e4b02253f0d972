--[[
  Copies one listed id's entries into a shard's copy of the list, which the rules script of that shard reads
  (src/lists/lists.ts). A copy is taken only over an older version of the id (versions are the list history's
  stream ids, "<ms>-<seq>"), so two changes copied out of order, or a sync beside a change, end with the newest.

  Input:
    KEYS[1] the shard's copy        rm:<ns>:{s<n>}:lists:<kind>s           (hash id -> JSON array of entries)
    KEYS[2] its versions            rm:<ns>:{s<n>}:lists:<kind>s:versions  (hash id -> version copied)

    ARGV[1] id    ARGV[2] its entries (JSON; "" when it has none)    ARGV[3] their version

  Output: 1 copied; 0 the copy had that version or a newer one.
]]
local rcall = redis.call

local function parts(version)
  local ms, seq = string.match(version, "^(%d+)-(%d+)$")
  return tonumber(ms), tonumber(seq)
end

local held = rcall("HGET", KEYS[2], ARGV[1])
if held then
  local hms, hseq = parts(held)
  local ms, seq = parts(ARGV[3])
  if hms > ms or (hms == ms and hseq >= seq) then return 0 end
end
if ARGV[2] == "" then
  rcall("HDEL", KEYS[1], ARGV[1])
else
  rcall("HSET", KEYS[1], ARGV[1], ARGV[2])
end
rcall("HSET", KEYS[2], ARGV[1], ARGV[3])
return 1
