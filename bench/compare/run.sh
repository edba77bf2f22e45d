#!/usr/bin/env bash
# Session-middleware comparison under load: sessio against tower-sessions and
# actix-session, every variant of compare-server run interleaved (A B C ... A B C ...).
#
#   cargo build --release -p sessio-compare
#   bench/compare/run.sh [-v "VARIANTS"] [-r "ROUTES"] [-d DURATION] [-n ROUNDS]
#                        [-w WARMUP] [-c CONNS] [-m conn|pool]
#
# For each round, variant and route: start the server (one worker) pinned to SERVER_CPU,
# make CONNS sessions (one cookie-less GET per session, cookies kept), warm up with wrk
# for WARMUP, then measure with wrk pinned to CLIENT_CPU for DURATION, CONNS connections,
# scripts/session.lua sending each connection's session cookie. Server CPU comes from
# /proc/PID/stat (utime+stime, all threads) around the measurement, peak RSS from VmHWM;
# wrk's own CPU from its shell's reaped-children times (wrk and a private Redis share
# CLIENT_CPU by default, and that core, not the server's, can be what limits req/s).
#
# Routes: /hit runs on every variant. The other routes (load, set, incr) run only on the
# variants matching OPS_VARIANTS (default: every *redis* variant).
#
# Redis variants use a private redis-server started here on REDIS_PORT (default 18079,
# pinned to REDIS_CPU, default the client CPU) so that no other user's traffic enters the
# command counts; it is FLUSHALLed before each server start and stopped at the end.
#
# Knobs (env, or the flags above): VARIANTS ROUTES DURATION=5s ROUNDS=3 WARMUP=1s
#   CONNS=32 MODE=conn SERVER_CPU=0 CLIENT_CPU=1 REDIS_CPU=$CLIENT_CPU REDIS_PORT=18079
#   BASE_PORT=18000 WORKERS=1 OPS_VARIANTS=redis BIN=target/release/compare-server
# Needs: wrk, curl, taskset, redis-server, redis-cli (Debian: wrk curl redis-server).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/compare-server}
ROUTES=${ROUTES:-"hit load set incr"}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-32}
MODE=${MODE:-conn}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REDIS_CPU=${REDIS_CPU-$CLIENT_CPU}
REDIS_PORT=${REDIS_PORT:-18079}
BASE_PORT=${BASE_PORT:-18000}
WORKERS=${WORKERS:-1}
OPS_VARIANTS=${OPS_VARIANTS:-redis}
VARIANTS=${VARIANTS:-}

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while getopts "v:r:d:n:w:c:m:h" opt; do
  case $opt in
    v) VARIANTS=$OPTARG ;; r) ROUTES=$OPTARG ;; d) DURATION=$OPTARG ;;
    n) ROUNDS=$OPTARG ;; w) WARMUP=$OPTARG ;; c) CONNS=$OPTARG ;; m) MODE=$OPTARG ;;
    h) usage 0 ;; *) usage ;;
  esac
done
[[ $MODE == conn || $MODE == pool ]] || { echo "MODE must be conn or pool" >&2; exit 2; }

for tool in wrk curl taskset redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk curl redis-server)" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "build it first: cargo build --release -p sessio-compare ($BIN)" >&2; exit 1; }
VARIANTS=${VARIANTS:-$("$BIN" --list | tr '\n' ' ')}
LUA=$HERE/scripts/session.lua
RESULTS=$HERE/results
mkdir -p "$RESULTS"
STAMP=$(date -u +%Y%m%d-%H%M%S)
RAW=$RESULTS/run-$STAMP.tsv
TMP=$(mktemp -d)
printf 'round\tvariant\troute\trps\tp99_us\tmean_us\trequests\tnon2xx\tsock_errors\tsessions\tmax_counter\tsrv_us_per_req\tvmhwm_kb\tredis_cmds_per_req\tredis_reads_per_req\tredis_us_per_req\tredis_by_command\tclient_us_per_req\n' >"$RAW"

SRV_PID=""
REDIS_PID=""
cleanup() {
  if [[ -n $SRV_PID ]]; then kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; fi
  if [[ -n $REDIS_PID ]]; then
    kill "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

REDIS_URL=redis://127.0.0.1:$REDIS_PORT
R=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
if [[ $VARIANTS == *redis* ]]; then
  if "${R[@]}" ping >/dev/null 2>&1; then
    echo "something already answers on port $REDIS_PORT; set REDIS_PORT to a free port" >&2; exit 1
  fi
  pin=(); [[ -n $REDIS_CPU ]] && pin=(taskset -c "$REDIS_CPU")
  "${pin[@]}" redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --pidfile "$TMP/redis.pid" --dir "$TMP" >/dev/null
  for _ in $(seq 50); do "${R[@]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
  REDIS_PID=$(cat "$TMP/redis.pid")
  echo "private redis-server pid $REDIS_PID on port $REDIS_PORT (cpu ${REDIS_CPU:-any})" >&2
fi

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime+stime, all threads
vmhwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# "name=calls ..." for every command, plus total_commands_processed and total_reads_processed
redis_snapshot() {
  { "${R[@]}" info commandstats; "${R[@]}" info stats; } | tr -d '\r' | awk -F'[:,=]' '
    /^cmdstat_/ { sub(/^cmdstat_/, "", $1); printf "%s=%s ", $1, $3 }
    /^total_commands_processed:/ { printf "TOTAL=%s ", $2 }
    /^total_reads_processed:/ { printf "READS=%s ", $2 }'
}

start_server() {  # variant port
  taskset -c "$SERVER_CPU" "$BIN" --variant "$1" --addr "127.0.0.1:$2" --workers "$WORKERS" \
    --redis "$REDIS_URL" >"$TMP/server.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 100); do
    grep -qs "listening on" "$TMP/server.log" && curl -sf -o /dev/null "http://127.0.0.1:$2/healthz" && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $1 failed to start:" >&2; cat "$TMP/server.log" >&2
  stop_server; return 1
}
stop_server() { kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""; }

# CONNS new sessions through /hit; their cookies (name=value) go to $1, one per line.
make_sessions() {  # cookie_file port
  : >"$1"
  local i
  for ((i = 0; i < CONNS; i++)); do
    curl -sf -D - -o /dev/null "http://127.0.0.1:$2/hit" |
      awk 'tolower($1) == "set-cookie:" { sub(/\r$/, ""); split($2, a, ";"); print a[1] }' >>"$1"
  done
}

wrk_threads() { [[ $MODE == conn ]] && echo "$CONNS" || echo 1; }

runs_route() {  # variant route -> 0 if this variant runs this route
  [[ $2 == hit ]] && return 0
  [[ $1 =~ $OPS_VARIANTS ]]
}

T_START=$(date +%s)
idx=0
for round in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    for route in $ROUTES; do
      runs_route "$v" "$route" || continue
      idx=$((idx + 1)); port=$((BASE_PORT + idx % 70))
      (( port == REDIS_PORT )) && port=$((port + 70))  # never the private Redis's port
      [[ $v == *redis* ]] && "${R[@]}" flushall >/dev/null
      start_server "$v" "$port" || { printf '%s\t%s\t%s\tFAILED\n' "$round" "$v" "$route" >>"$RAW"; continue; }
      cookies=$TMP/cookies
      make_sessions "$cookies" "$port"
      url=http://127.0.0.1:$port/$route
      taskset -c "$CLIENT_CPU" wrk -t"$(wrk_threads)" -c"$CONNS" -d"$WARMUP" -s "$LUA" "$url" -- "$MODE" "$cookies" >/dev/null
      t0=$(cpu_ticks "$SRV_PID"); r0=$([[ -n $REDIS_PID ]] && cpu_ticks "$REDIS_PID" || echo 0)
      s0=$([[ $v == *redis* ]] && redis_snapshot || true)
      # The subshell reaps only this wrk: its cutime+cstime afterwards is wrk's CPU.
      out=$(taskset -c "$CLIENT_CPU" wrk -t"$(wrk_threads)" -c"$CONNS" -d"$DURATION" --timeout 5s -s "$LUA" "$url" -- "$MODE" "$cookies"
        awk '{ print "WRK_TICKS", $16 + $17 }' "/proc/$BASHPID/stat")
      s1=$([[ $v == *redis* ]] && redis_snapshot || true)
      t1=$(cpu_ticks "$SRV_PID"); r1=$([[ -n $REDIS_PID ]] && cpu_ticks "$REDIS_PID" || echo 0)
      hwm=$(vmhwm_kb "$SRV_PID")
      stop_server
      line=$(grep '^RESULT' <<<"$out") || { echo "wrk gave no RESULT for $v $route: $out" >&2; continue; }
      get() { sed -E "s/.*[ ]$1=([^ ]+).*/\1/" <<<"$line"; }
      reqs=$(get requests)
      us=$(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
      wus=$(awk -v n="$reqs" -v hz="$CLK_TCK" '/^WRK_TICKS/ { printf "%.2f", $2 / hz * 1e6 / n }' <<<"$out")
      cmds=-; reads=-; rus=-; by=-
      if [[ $v == *redis* ]]; then
        # The first snapshot's two INFO calls land in the second one's counts: minus 2.
        read -r cmds reads by < <(awk -v s0="$s0" -v s1="$s1" -v n="$reqs" 'BEGIN {
          split(s0, A, " "); split(s1, B, " ")
          for (i in A) { split(A[i], kv, "="); a[kv[1]] = kv[2] }
          for (i in B) { split(B[i], kv, "="); b[kv[1]] = kv[2] }
          by = ""
          for (k in b) if (k != "TOTAL" && k != "READS" && k != "info") {
            d = b[k] - a[k]; if (d > 0) by = by sprintf("%s%s:%.3f", by == "" ? "" : ",", k, d / n)
          }
          printf "%.3f %.3f %s\n", (b["TOTAL"] - a["TOTAL"] - 2) / n, (b["READS"] - a["READS"] - 2) / n, by == "" ? "-" : by }')
        rus=$(awk -v a="$r0" -v b="$r1" -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
      fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$v" "$route" \
        "$(get rps)" "$(get lat_p99_us)" "$(get lat_mean_us)" "$reqs" "$(get non2xx)" "$(get sock_errors)" \
        "$(get sessions)" "$(get max_counter)" "$us" "$hwm" "$cmds" "$reads" "$rus" "$by" "${wus:--}" >>"$RAW"
      printf '  round %s %-22s /%-5s %9s req/s  %6s us/req  wrk %6s us/req  p99 %6s us  non2xx %s%s\n' "$round" "$v" "$route" \
        "$(get rps)" "$us" "${wus:--}" "$(get lat_p99_us)" "$(get non2xx)" \
        "$([[ $cmds == - ]] || echo "  redis $cmds cmds/req $reads reads/req")" >&2
    done
  done
done
ELAPSED=$(($(date +%s) - T_START))

echo
echo "compare-server under wrk ($(date -u +%FT%TZ), $ROUNDS round(s) interleaved, ${DURATION} each after ${WARMUP} warm-up,"
echo "server: --workers $WORKERS on CPU $SERVER_CPU; wrk: -c$CONNS -t$(wrk_threads) ($MODE mode) on CPU $CLIENT_CPU; redis on CPU ${REDIS_CPU:-any}; took ${ELAPSED}s)"
echo "raw rows: $RAW"
awk -F'\t' -v routes="$ROUTES" '
  function median(list,   n, x, i, j, t) {
    n = split(list, x, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && x[j - 1] + 0 > x[j] + 0; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
    return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
  }
  NR == 1 || $4 == "FAILED" { next }
  {
    k = $2 SUBSEP $3
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    rps[k] = rps[k] " " $4; us[k] = us[k] " " $12; p99[k] = p99[k] " " $5
    if ($13 + 0 > hwm[k]) hwm[k] = $13 + 0
    cmds[k] = cmds[k] " " $14; reads[k] = reads[k] " " $15; rus[k] = rus[k] " " $16; by[k] = $17
    wus[k] = wus[k] " " $18
    bad[k] += $8 + $9
    runs[k] = runs[k] sprintf(" %.0f", $4)
  }
  END {
    nr = split(routes, R, " ")
    for (j = 1; j <= nr; j++) {
      r = R[j]; any = 0
      for (i = 1; i <= nk; i++) { split(order[i], kk, SUBSEP); if (kk[2] == r) any = 1 }
      if (!any) continue
      printf "\n/%s\n", r
      printf "| variant | req/s per round | median req/s | vs. bare | server µs/req | vs. bare | wrk µs/req | p99 ms | peak RSS MiB | errors |\n"
      printf "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
      for (i = 1; i <= nk; i++) {
        split(order[i], kk, SUBSEP); if (kk[2] != r) continue
        v = kk[1]; fw = (v ~ /axum|tower/) ? "axum-bare" : "actix-bare"; b = fw SUBSEP r
        if (!(b in seen)) b = fw SUBSEP "hit"
        mr = median(rps[order[i]]); mu = median(us[order[i]])
        vr = (b in seen) ? sprintf("%.3f", mr / median(rps[b])) : "-"
        vu = (b in seen) ? sprintf("%.2f", mu / median(us[b])) : "-"
        printf "| %s | %s | %.0f | %s | %.2f | %s | %s | %.2f | %.1f | %d |\n", v, substr(runs[order[i]], 2), mr, vr, mu, vu, median(wus[order[i]]), median(p99[order[i]]) / 1000, hwm[order[i]] / 1024, bad[order[i]]
      }
    }
    hdr = 0
    for (i = 1; i <= nk; i++) {
      split(order[i], kk, SUBSEP); if (kk[1] !~ /redis/) continue
      if (!hdr) {
        printf "\nRedis, per HTTP request (medians over rounds; commands = total_commands_processed delta,\n"
        printf "which counts every command inside a Lua script or MULTI block; reads = read events of\n"
        printf "redis-server, about one per round trip unless requests share a read):\n"
        printf "| variant | route | req/s | Redis commands/req | Redis reads/req | Redis CPU µs/req | by command (last round) |\n"
        printf "| --- | --- | --- | --- | --- | --- | --- |\n"; hdr = 1
      }
      printf "| %s | /%s | %.0f | %.3f | %.3f | %.2f | %s |\n", kk[1], kk[2], median(rps[order[i]]), median(cmds[order[i]]), median(reads[order[i]]), median(rus[order[i]]), by[order[i]]
    }
  }' "$RAW"
echo
echo "vs. bare: median of the variant / median of the same framework's bare variant on the same route"
echo "(axum-bare for axum, tower-* and sessio-axum-*; actix-bare for actix-*, sessio-actix-*)."
echo "server µs/req: server CPU time (utime+stime, /proc) during the measurement / requests."
echo "wrk µs/req: wrk's own CPU time during the measurement / requests (it shares CLIENT_CPU with"
echo "the private Redis: wrk µs + Redis CPU µs near 1e6 / req/s means the client core was the limit)."
echo "errors: non-2xx answers + socket errors over all rounds."
