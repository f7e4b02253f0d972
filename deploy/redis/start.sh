#!/bin/sh
# Starts Redis with AOF the way docs/reliability.md ("Restart procedure") says: repair the AOF first. A crash
# (SIGKILL, OOM killer, power loss) during a write can cut the AOF inside the MULTI/EXEC block of a script's writes;
# Redis 7 then loads up to the last whole command and leaves that MULTI open, so the writes of the next run join it
# and are lost at the following restart. redis-check-aof --fix cuts before the MULTI (it changes nothing in an AOF
# that is whole). Arguments are redis-server's.
set -eu
data="${REDIS_DATA_DIR:-/data}"
manifest="$data/appendonlydir/appendonly.aof.manifest"
if [ -f "$manifest" ]; then
  echo y | redis-check-aof --fix "$manifest"
fi
# The image's entrypoint drops root before it runs redis-server.
exec ${REDIS_EXEC:-docker-entrypoint.sh} redis-server "$@"
