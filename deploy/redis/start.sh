#!/bin/sh
# Starts Redis with AOF the way docs/reliability.md ("Restart procedure") says: repair a torn AOF tail first. A crash
# (SIGKILL, OOM killer, power loss) during a write can cut the AOF inside the MULTI/EXEC block of a script's writes;
# Redis 7.0 then loads up to the last whole command and leaves that MULTI open, so the writes of the next run join it
# and are lost at the following restart. redis-check-aof --fix cuts before the MULTI instead.
# It fixes only a tail no longer than REDIS_AOF_MAX_FIX_BYTES (default 4 MiB: a torn write of one script call is far
# smaller), keeps the damaged file beside the fixed one, and refuses to start on anything larger: damage that deep is
# not a torn write, and an operator must look. Arguments are redis-server's; the AOF must be in REDIS_DATA_DIR.
set -eu
data="${REDIS_DATA_DIR:-/data}"
limit="${REDIS_AOF_MAX_FIX_BYTES:-4194304}"
case "$limit" in
  '' | *[!0-9]*)
    echo "redis-start: REDIS_AOF_MAX_FIX_BYTES must be a whole number of bytes, got \"$limit\"" >&2
    exit 2
    ;;
esac
manifest="$data/appendonlydir/appendonly.aof.manifest"
if [ -f "$manifest" ] && ! report=$(redis-check-aof "$manifest" 2>&1); then
  # The invalid file's line: "AOF analyzed: filename=<f>, size=<n>, ok_up_to=<n>, ok_up_to_line=<n>, diff=<bytes cut>".
  line=$(printf '%s\n' "$report" | grep 'AOF analyzed:' | grep -v 'diff=0$' | tail -n 1)
  file=$(printf '%s\n' "$line" | sed -n 's/.*filename=\([^,]*\),.*/\1/p')
  cut=$(printf '%s\n' "$line" | sed -n 's/.*diff=\([0-9]*\)$/\1/p')
  if [ -z "$file" ] || [ -z "$cut" ] || [ "$cut" -gt "$limit" ]; then
    printf '%s\n' "$report" >&2
    echo "redis-start: the AOF is damaged beyond a torn tail (${cut:-?} bytes to cut, at most $limit): not starting. Inspect it with redis-check-aof; see docs/reliability.md, \"Restart procedure\"." >&2
    exit 1
  fi
  cp "$data/appendonlydir/$file" "$data/appendonlydir/$file.torn-$(date +%Y%m%dT%H%M%S)"
  echo y | redis-check-aof --fix "$manifest"
  echo "redis-start: cut a torn tail of $cut bytes from $file (the damaged file is kept beside it)" >&2
fi
# The image's entrypoint drops root before it runs redis-server.
exec "${REDIS_EXEC:-docker-entrypoint.sh}" redis-server "$@"
