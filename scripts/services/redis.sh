#!/usr/bin/env bash
# Makes sure a Redis answers on 127.0.0.1:6379: installs redis-server with apt-get if it
# is missing, starts it if it is not running, waits until it answers. Idempotent.
set -euo pipefail
PORT=6379
answers() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "redis: installing redis-server" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
if ! answers; then
  echo "redis: starting on 127.0.0.1:$PORT" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no
fi
for _ in $(seq 1 50); do answers && exit 0; sleep 0.2; done
echo "redis: no answer on 127.0.0.1:$PORT" >&2
exit 1
