#!/usr/bin/env bash
# Overload: sends offered at twice what the server sustains, against the SQLite bench
# server pinned to core 0 (the load generator on core 1). Two runs, each on a fresh
# server:
#
#   1. bounded: `--max-pending-appends` MAX_PENDING (the engine's default, 256). The load
#      generator first measures the sustainable rate (a closed loop of MAX_PENDING
#      clients, one send in flight each, so none is refused), then offers FACTOR times it;
#   2. unbounded (`--max-pending-appends 0`) at the same offered rate, for comparison.
#
# Each prints offered, written, acked and refused sends per second and the ack latency.
#
#   benches/overload.sh
#   MAX_PENDING=1024 ROOMS=500 benches/overload.sh
#
# Environment: MAX_PENDING (256), FACTOR (2), ROOMS (1000) × MEMBERS (2) clients,
# DURATION (10 s), WARMUP (2 s), CALIBRATE (5 s), PORT (4170). Loopback only.
set -euo pipefail

BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCHES/.." && pwd)"
OUT="$BENCHES/results"
mkdir -p "$OUT"
STAMP="$(date +%Y%m%d-%H%M%S)"
JSON="$OUT/overload-$STAMP.jsonl"
MAX_PENDING="${MAX_PENDING:-256}"
FACTOR="${FACTOR:-2}"
ROOMS="${ROOMS:-1000}"
MEMBERS="${MEMBERS:-2}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CALIBRATE="${CALIBRATE:-5}"
PORT="${PORT:-4170}"
SECRET="overload-secret-$STAMP"
KEY="overload-key-$STAMP"

ulimit -n 1048576 2>/dev/null || ulimit -n 524288 2>/dev/null || ulimit -n 65536 2>/dev/null || true
if [ "$(nproc)" -ge 2 ]; then SERVER_CPU=(taskset -c 0); LOADGEN_CPU=(taskset -c 1);
else SERVER_CPU=(); LOADGEN_CPU=(); fi

(cd "$ROOT" && cargo build --release -p chat-benches --bins --quiet)
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
SERVER="$TARGET_DIR/release/bench-server"
LOADGEN="$TARGET_DIR/release/loadgen"

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

start_server() { # max-pending-appends
  "${SERVER_CPU[@]}" "$SERVER" --store sqlite --addr "127.0.0.1:$PORT" --secret "$SECRET" \
    --admin-key "$KEY" --max-pending-appends "$1" >>"$OUT/overload-server-$STAMP.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    kill -0 "$SERVER_PID" || break
    sleep 0.1
  done
  echo "the server did not start"; exit 1
}

run() { # label name extra-flags...
  local label=$1 name=$2; shift 2
  echo "load average before $label: $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 300 "${LOADGEN_CPU[@]}" "$LOADGEN" run overload --name "$name" --label "$label" \
    --addr "127.0.0.1:$PORT" --pid "$SERVER_PID" --secret "$SECRET" --admin-key "$KEY" \
    --rooms "$ROOMS" --members "$MEMBERS" --duration "$DURATION" --warmup "$WARMUP" \
    --concurrency 256 --json "$JSON" "$@"
}

start_server "$MAX_PENDING"
run "ours-sqlite-bound-$MAX_PENDING" "overload-${FACTOR}x" --factor "$FACTOR" \
  --calibrate "$CALIBRATE" --calibrate-clients "$MAX_PENDING"
stop_server

RATE="$(python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).read().splitlines()[-1])["overload"]; print(round(o["sustainable_per_s"]*float(sys.argv[2])))' "$JSON" "$FACTOR")"
start_server 0
run "ours-sqlite-unbounded" "overload-${FACTOR}x" --sends-per-s "$RATE"
stop_server
echo "results: $JSON"
