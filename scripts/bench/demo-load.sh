#!/usr/bin/env bash
# Requests/s of the demo's /hit (read `counter`, write counter+1, sessions reused) for
# several --store specs, interleaved over ROUNDS rounds so that they share the
# machine's conditions. Server pinned to CPU 0, wrk to CPU 1, 32 connections, each
# request after the first ones carrying one of 32 live session cookies (the peers
# harness's wrk script, ../shared/peers/scripts/session.lua, so that the figures
# compare with the peers' runs).
#
#   cargo build --release -p sessio-demo
#   scripts/bench/demo-load.sh memory redis://127.0.0.1:6379/0 postgres://postgres@127.0.0.1:5432/postgres
#
# Prints one line per run and a median per store. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMO=${DEMO:-target/release/sessio-demo}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
PORT=${PORT:-18181}
LUA=${LUA:-../shared/peers/scripts/session.lua}
[[ -x $DEMO ]] || { echo "build the demo first: cargo build --release -p sessio-demo" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
(( $# > 0 )) || set -- memory
results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    taskset -c 0 "$DEMO" --addr "127.0.0.1:$PORT" --workers 1 --store "$spec" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
    line=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" -s "$LUA" "http://127.0.0.1:$PORT/hit" \
      -- capture "$CONNS" | grep '^RESULT')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")
    printf '%s\t%s\t%s\t%s\n' "$round" "$spec" "$rps" "$line" | tee -a "$results"
  done
done
echo "median requests/s over $ROUNDS rounds:"
for spec in "$@"; do
  awk -F'\t' -v s="$spec" '$2 == s {print $3}' "$results" | sort -n | awk -v s="$spec" '{a[NR]=$1} END {printf "%-60s %10.0f\n", s, a[int((NR+1)/2)]}'
done
rm -f "$results"
