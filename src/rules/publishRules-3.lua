--[[
  Publishes a rules version, or makes an earlier one live again, and records the change, atomically.

  Input:
    KEYS[1] versions                rm:<ns>:{rules}:versions             (hash version -> record JSON)
    KEYS[2] live version            rm:<ns>:{rules}:live                 (string)
    KEYS[3] history                 rm:<ns>:{rules}:history              (stream, field "change": JSON)

    ARGV[1] "publish": ARGV[2] the record (JSON), stored as the next version
            "rollback": ARGV[2] the version to make live
    ARGV[3] the change record (JSON, without version and previous: this adds them)

  Output: { version made live, previous live version or 0 }, or an error reply for a rollback to a version that
  does not exist or is live already.
]]
local rcall = redis.call
local previous = tonumber(rcall("GET", KEYS[2]) or "0")
local version
if ARGV[1] == "publish" then
  version = rcall("HLEN", KEYS[1]) + 1
  rcall("HSET", KEYS[1], tostring(version), ARGV[2])
else
  version = tonumber(ARGV[2])
  if rcall("HEXISTS", KEYS[1], ARGV[2]) == 0 then
    return redis.error_reply("NOVERSION no published version " .. ARGV[2])
  end
  if version == previous then
    return redis.error_reply("LIVE version " .. ARGV[2] .. " is live already")
  end
end
rcall("SET", KEYS[2], tostring(version))
local change = cjson.decode(ARGV[3])
change.version = version
change.previous = previous
rcall("XADD", KEYS[3], "*", "change", cjson.encode(change))
return { version, previous }
