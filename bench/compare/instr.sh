#!/usr/bin/env bash
# Instructions per HTTP request under valgrind's callgrind, for every compare-server
# variant. Unlike run.sh's wall-clock figures these repeat to within about 1%.
#
#   cargo build --release -p sessio-compare
#   bench/compare/instr.sh [-v "VARIANTS"] [-r "ROUTES"] [-n RUNS]
#
# For each run, variant, route and request count N in {N1, N2}: start a fresh server
# (--workers 1) under `valgrind --tool=callgrind`, wait for its start-up line, let
# scripts/instr_client.py make CONNS sessions (one GET /hit each) and then send exactly N
# requests to the route over those CONNS keep-alive connections (round-robin, one in
# flight, each connection with its own cookie jar), stop the server with SIGTERM so that
# callgrind writes its totals, and read Ir (all threads). Then
#     instructions/request = (I(N2) - I(N1)) / (N2 - N1)
# so that start-up, the sessions' creation and shutdown cancel out.
#
# /hit runs on every variant; load, set and incr only on variants matching OPS_VARIANTS
# (default: *redis*). Redis variants use a private redis-server on REDIS_PORT (started
# and stopped here, FLUSHALLed before each server start).
#
# Knobs (env, or the flags): VARIANTS ROUTES="hit load set incr" RUNS=1 N1=2000 N2=7000
#   CONNS=4 BASE_PORT=18080 REDIS_PORT=18079 OPS_VARIANTS=redis CG_OPTS=""
#   START_TIMEOUT=120 CLIENT_TIMEOUT=1200 BIN=target/release/compare-server
# Needs: valgrind, python3, redis-server and redis-cli (Redis variants).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/compare-server}
ROUTES=${ROUTES:-"hit load set incr"}
RUNS=${RUNS:-1}
N1=${N1:-2000}
N2=${N2:-7000}
CONNS=${CONNS:-4}
BASE_PORT=${BASE_PORT:-18080}
REDIS_PORT=${REDIS_PORT:-18079}
OPS_VARIANTS=${OPS_VARIANTS:-redis}
CG_OPTS=${CG_OPTS:-}
START_TIMEOUT=${START_TIMEOUT:-120}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-1200}
VARIANTS=${VARIANTS:-}

while getopts "v:r:n:h" opt; do
  case $opt in
    v) VARIANTS=$OPTARG ;; r) ROUTES=$OPTARG ;; n) RUNS=$OPTARG ;;
    *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
(( N2 > N1 )) || { echo "need N2 > N1" >&2; exit 2; }
for tool in valgrind python3 timeout; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y valgrind python3)" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "build it first: cargo build --release -p sessio-compare ($BIN)" >&2; exit 1; }
VARIANTS=${VARIANTS:-$("$BIN" --list | tr '\n' ' ')}
CLIENT=$HERE/scripts/instr_client.py
RESULTS=$HERE/results
mkdir -p "$RESULTS"
RAW=$RESULTS/instr-$(date -u +%Y%m%d-%H%M%S).tsv
TMP=$(mktemp -d)
printf 'run\tvariant\troute\tn\tir\tchecks\n' >"$RAW"

SRV_PID=""
REDIS_PID=""
stop_server() {
  [[ -n $SRV_PID ]] || return 0
  kill -TERM "$SRV_PID" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=""
}
cleanup() {
  stop_server
  if [[ -n $REDIS_PID ]]; then
    kill "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

R=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
if [[ $VARIANTS == *redis* ]]; then
  if "${R[@]}" ping >/dev/null 2>&1; then
    echo "something already answers on port $REDIS_PORT; set REDIS_PORT to a free port" >&2; exit 1
  fi
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --pidfile "$TMP/redis.pid" --dir "$TMP" >/dev/null
  for _ in $(seq 50); do "${R[@]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
  REDIS_PID=$(cat "$TMP/redis.pid")
fi

start_server() {  # variant port outprefix
  valgrind --tool=callgrind "--callgrind-out-file=$3.cg" $CG_OPTS \
    "$BIN" --variant "$1" --addr "127.0.0.1:$2" --workers 1 --redis "redis://127.0.0.1:$REDIS_PORT" \
    >"$3.log" 2>&1 &
  SRV_PID=$!
  local i
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    grep -qs "listening on" "$3.log" && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $1 did not start:" >&2; tail -n 20 "$3.log" >&2
  stop_server; return 1
}

runs_route() { [[ $2 == hit ]] || [[ $1 =~ $OPS_VARIANTS ]]; }

T_START=$(date +%s)
idx=0
for run in $(seq "$RUNS"); do
  for v in $VARIANTS; do
    for route in $ROUTES; do
      runs_route "$v" "$route" || continue
      bare=""; [[ $v == *-bare || $v == *-bare-* ]] && bare=bare
      for n in "$N1" "$N2"; do
        idx=$((idx + 1)); port=$((BASE_PORT + idx % 10))
        [[ $v == *redis* ]] && "${R[@]}" flushall >/dev/null
        out=$TMP/cg-$idx
        t0=$(date +%s)
        start_server "$v" "$port" "$out" || { printf '%s\t%s\t%s\t%s\tFAILED\tstart\n' "$run" "$v" "$route" "$n" >>"$RAW"; continue; }
        res=$(timeout "$CLIENT_TIMEOUT" python3 "$CLIENT" "$port" "/$route" "$n" "$CONNS" $bare 2>&1) || true
        stop_server
        ir=$(awk '/^totals:/ { print $2; f = 1; exit } END { if (!f) print "NA" }' "$out.cg" 2>/dev/null || echo NA)
        [[ $res == *checks=ok* ]] || { echo "   client: $res" >&2; ir=FAILED; }
        chk=$(grep -o 'checks=[a-zA-Z]*' <<<"$res" || echo client-failed)
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$v" "$route" "$n" "$ir" "$chk" >>"$RAW"
        printf '   run %s %-22s /%-5s N=%-6s Ir=%-12s %s (%ss)\n' "$run" "$v" "$route" "$n" "$ir" "$chk" $(($(date +%s) - t0)) >&2
        rm -f "$out".*
      done
    done
  done
done

echo
echo "compare-server instructions per request under callgrind ($(date -u +%FT%TZ), $(valgrind --version),"
echo "--workers 1, $CONNS keep-alive connections, one request in flight, per request ="
echo "(I($N2) - I($N1)) / $((N2 - N1)), all threads; $RUNS run(s); took $(($(date +%s) - T_START))s; raw: $RAW)"
echo
awk -F'\t' -v n1="$N1" -v n2="$N2" -v routes="$ROUTES" '
  NR == 1 { next }
  {
    k = $2 SUBSEP $3
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    if ($5 == "FAILED" || $5 == "NA") { failed[k] = 1; next }
    I[$1, k, $4] = $5; runs[$1] = 1
  }
  END {
    for (i = 1; i <= nk; i++) {
      k = order[i]; s = 0; c = 0; lo = ""; hi = ""
      for (r in runs) if (((r, k, n1) in I) && ((r, k, n2) in I)) {
        x = (I[r, k, n2] - I[r, k, n1]) / (n2 - n1); s += x; c++
        if (lo == "" || x < lo) lo = x; if (hi == "" || x > hi) hi = x
      }
      if (c && !(k in failed)) { mean[k] = s / c; spread[k] = c > 1 ? sprintf("%.2f%%", 100 * (hi - lo) / mean[k]) : "-" }
    }
    nr = split(routes, R, " ")
    for (j = 1; j <= nr; j++) {
      r = R[j]; any = 0
      for (i = 1; i <= nk; i++) { split(order[i], kk, SUBSEP); if (kk[2] == r) any = 1 }
      if (!any) continue
      printf "/%s\n| variant | instructions/request | vs. bare | spread over runs |\n| --- | --- | --- | --- |\n", r
      for (i = 1; i <= nk; i++) {
        split(order[i], kk, SUBSEP); if (kk[2] != r) continue
        v = kk[1]; b = ((v ~ /axum|tower/) ? "axum-bare" : "actix-bare") SUBSEP r
        if (!(b in mean)) b = ((v ~ /axum|tower/) ? "axum-bare" : "actix-bare") SUBSEP "hit"
        if (!(order[i] in mean)) { printf "| %s | FAILED | - | - |\n", v; continue }
        printf "| %s | %.0f | %s | %s |\n", v, mean[order[i]], (b in mean) ? sprintf("%.2f", mean[order[i]] / mean[b]) : "-", spread[order[i]]
      }
      printf "\n"
    }
  }' "$RAW"
echo "Instructions of the server process only (user space, all threads): not the kernel and,"
echo "for Redis variants, not redis-server's own work. vs. bare: / the same framework's bare"
echo "variant on the same route (axum-bare for axum, tower-*, sessio-axum-*; actix-bare else)."
