#!/usr/bin/env bash
# Churn: a new session on every request (wrk sends no cookie, /hit writes), a short
# idle timeout so sessions expire all the time, full load for DURATION seconds.
# Samples the demo's resident memory every SAMPLE seconds and fails when the last
# sample exceeds 1.2x the sample taken after WARMUP seconds (RSS must stay flat).
#
#   cargo build --release -p sessio-demo
#   scripts/bench/churn.sh                       # memory store, 60 s, idle 5 s
#   STORE=redb:/tmp/churn.redb scripts/bench/churn.sh
#
# Prints the RSS curve as "seconds  RSS MiB  live sessions" and the requests/s.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMO=${DEMO:-target/release/sessio-demo}
STORE=${STORE:-memory}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-15}
SAMPLE=${SAMPLE:-5}
IDLE=${IDLE:-5}
CONNS=${CONNS:-32}
PORT=${PORT:-18390}
[[ -x $DEMO ]] || { echo "build the demo first: cargo build --release -p sessio-demo" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
log=$(mktemp)
taskset -c 0 "$DEMO" --addr "127.0.0.1:$PORT" --workers 1 --idle "$IDLE" --store "$STORE" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT/hit" >"$log.wrk" &
wrk_pid=$!
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
echo "seconds  RSS_MiB  live_sessions"
warm=""; last=""
for t in $(seq "$SAMPLE" "$SAMPLE" "$DURATION"); do
  sleep "$SAMPLE"
  last=$(rss)
  live=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/admin/count" || echo "?")
  echo "$t  $last  $live"
  (( t == WARMUP )) && warm=$last
done
wait "$wrk_pid" || true
grep -E "Requests/sec|Non-2xx|Socket errors" "$log.wrk" || true
rm -f "$log.wrk"
[[ -n $warm ]] || warm=$last
if awk -v w="$warm" -v l="$last" 'BEGIN { exit !(l > 1.2 * w) }'; then
  echo "FAIL: RSS grew from $warm MiB after warm-up to $last MiB" >&2
  exit 1
fi
echo "OK: RSS $warm MiB after ${WARMUP}s, $last MiB at the end"
