#!/usr/bin/env bash
# Soak: a long load run against the demo, with new and returning sessions mixed
# (scripts/bench/soak.lua) and an idle timeout of a few seconds so that sessions expire
# all the time. Samples the demo's resident memory (VmRSS) every 10 s and fails when
#   - any answer was not 2xx, or wrk saw socket errors or timeouts,
#   - the demo's stderr shows a panic, or the demo died,
#   - RSS at the end exceeds 1.2x RSS after the warm-up.
# Not part of scripts/test.sh (it takes 10 minutes by default).
#
#   cargo build --release -p sessio-demo
#   scripts/bench/soak.sh                      # 600 s, 256 connections, idle 5 s
#   scripts/bench/soak.sh --duration 120 --framework hyper
#
# Flags (all optional): --duration SECS (600), --connections N (256), --threads N (2),
# --idle SECS (5), --warmup SECS (min(60, duration/4)), --framework axum|actix|hyper
# (axum), --store SPEC (memory), --new PERCENT (20), --read PERCENT (10), --port N
# (18320), --out DIR (target/soak: demo.stderr, rss.tsv, wrk.txt).
# Env: DEMO (target/release/sessio-demo). Needs wrk (apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMO=${DEMO:-target/release/sessio-demo}
duration=600 conns=256 threads=2 idle=5 warmup="" framework=axum store=memory
new=20 read=10 port=18320 out=target/soak
while (( $# > 0 )); do
  case $1 in
    --duration) duration=$2 ;;
    --connections) conns=$2 ;;
    --threads) threads=$2 ;;
    --idle) idle=$2 ;;
    --warmup) warmup=$2 ;;
    --framework) framework=$2 ;;
    --store) store=$2 ;;
    --new) new=$2 ;;
    --read) read=$2 ;;
    --port) port=$2 ;;
    --out) out=$2 ;;
    *) echo "soak.sh: unknown flag $1" >&2; exit 2 ;;
  esac
  shift 2
done
warmup=${warmup:-$(( duration / 4 < 60 ? duration / 4 : 60 ))}
[[ -x $DEMO ]] || { echo "build the demo first: cargo build --release -p sessio-demo" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
mkdir -p "$out"
stderr=$out/demo.stderr curve=$out/rss.tsv report=$out/wrk.txt
: >"$curve"

# Two cores or more: the demo on CPU 0, wrk on the others, as scripts/bench/demo-load.sh.
pin_demo=() pin_wrk=()
if command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  pin_demo=(taskset -c 0) pin_wrk=(taskset -c "1-$(( $(nproc) - 1 ))")
fi

RUST_LOG=${RUST_LOG:-warn} "${pin_demo[@]}" "$DEMO" --addr "127.0.0.1:$port" --idle "$idle" \
  --framework "$framework" --store "$store" >/dev/null 2>"$stderr" &
pid=$!
sampler=""
cleanup() {
  [[ -n $sampler ]] && kill "$sampler" 2>/dev/null
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "the demo did not start" >&2; cat "$stderr" >&2; exit 1; }

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0; }
start=$(date +%s)
( while kill -0 "$pid" 2>/dev/null; do
    printf '%s\t%s\n' "$(( $(date +%s) - start ))" "$(rss)"
    sleep 10
  done ) >>"$curve" &
sampler=$!

echo "soak: ${duration}s, $conns connections, $framework, store $store, idle ${idle}s, warm-up ${warmup}s" >&2
"${pin_wrk[@]}" wrk -t"$threads" -c"$conns" -d"${duration}s" --timeout 10s \
  -s scripts/bench/soak.lua "http://127.0.0.1:$port" -- "$new" "$read" >"$report" 2>&1 || true
kill "$sampler" 2>/dev/null || true
sampler=""
alive=yes
kill -0 "$pid" 2>/dev/null || alive=no
end_rss=$(rss)
printf '%s\t%s\n' "$(( $(date +%s) - start ))" "$end_rss" >>"$curve"

result=$(grep '^RESULT' "$report" || true)
field() { sed -nE "s/.*[ ]$1=([0-9.]+).*/\1/p" <<<"$result"; }
non2xx=$(field non2xx) sock=$(field sock_errors) timeouts=$(field timeouts)
panics=$(grep -c 'panicked' "$stderr" || true)
warm_rss=$(awk -v w="$warmup" '$1 >= w {print $2; exit}' "$curve")

echo "RSS curve (seconds, VmRSS KiB):"
cat "$curve"
echo "$result"
echo "non-2xx: ${non2xx:-?}  socket errors: ${sock:-?}  timeouts: ${timeouts:-?}  panics: $panics  demo alive: $alive"
echo "RSS after warm-up (${warmup}s): ${warm_rss:-?} KiB  at the end: $end_rss KiB"

fail=()
[[ -n $result ]] || fail+=("no RESULT line from wrk (see $report)")
[[ ${non2xx:-1} == 0 ]] || fail+=("non-2xx answers: ${non2xx:-?}")
[[ ${sock:-1} == 0 && ${timeouts:-1} == 0 ]] || fail+=("socket errors ${sock:-?}, timeouts ${timeouts:-?}")
(( panics == 0 )) || fail+=("$panics panics in $stderr")
[[ $alive == yes ]] || fail+=("the demo died")
if [[ -z $warm_rss || $warm_rss == 0 ]]; then
  fail+=("no RSS sample after the warm-up")
elif (( end_rss * 10 > warm_rss * 12 )); then
  fail+=("RSS grew from $warm_rss KiB to $end_rss KiB (> 1.2x)")
fi
if (( ${#fail[@]} > 0 )); then
  printf 'SOAK FAILED: %s\n' "${fail[@]}" >&2
  exit 1
fi
echo "SOAK PASSED"
