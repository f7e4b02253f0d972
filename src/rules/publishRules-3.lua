--[[
  Records a proposed rules version, makes one live once a second admin approves it, or makes an earlier approved
  one live again, and records the change, atomically.

  Input:
    KEYS[1] versions                rm:<ns>:{rules}:versions             (hash version -> record JSON)
    KEYS[2] live version            rm:<ns>:{rules}:live                 (string)
    KEYS[3] history                 rm:<ns>:{rules}:history              (stream, field "change": JSON)

    ARGV[1] "publish": ARGV[2] the record (JSON, pendingApproval true), stored as the next version; live unchanged
            "approve": ARGV[2] the version to approve and make live; ARGV[4] the approver (not its publisher);
                       ARGV[5] the record as approved (JSON written by the caller: cjson would turn [] into {})
            "rollback": ARGV[2] the version to make live again (one that was approved)
    ARGV[3] the change record (JSON, without version and previous: this adds them)

  Output: { version recorded or made live, live version before }, or an error reply: NOVERSION (no such version),
  LIVE (live already), APPROVED (approved already), SAMEADMIN (the approver published it), PENDING (a rollback to a
  version never approved).
]]
local rcall = redis.call
local previous = tonumber(rcall("GET", KEYS[2]) or "0")
local version
if ARGV[1] == "publish" then
  version = rcall("HLEN", KEYS[1]) + 1
  rcall("HSET", KEYS[1], tostring(version), ARGV[2])
else
  version = tonumber(ARGV[2])
  local json = rcall("HGET", KEYS[1], ARGV[2])
  if not json then
    return redis.error_reply("NOVERSION no published version " .. ARGV[2])
  end
  if version == previous then
    return redis.error_reply("LIVE version " .. ARGV[2] .. " is live already")
  end
  local record = cjson.decode(json)
  if ARGV[1] == "approve" then
    if record.pendingApproval ~= true then
      return redis.error_reply("APPROVED version " .. ARGV[2] .. " was approved already (npm run rules -- rollback makes it live again)")
    end
    if record.by == ARGV[4] then
      return redis.error_reply("SAMEADMIN version " .. ARGV[2] .. " was published by " .. ARGV[4] .. ": another admin must approve it")
    end
    rcall("HSET", KEYS[1], ARGV[2], ARGV[5])
  elseif record.pendingApproval == true then
    return redis.error_reply("PENDING version " .. ARGV[2] .. " was never approved: approve it instead")
  end
  rcall("SET", KEYS[2], tostring(version))
end
local change = cjson.decode(ARGV[3])
change.version = version
change.previous = previous
rcall("XADD", KEYS[3], "*", "change", cjson.encode(change))
return { version, previous }
