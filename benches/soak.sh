#!/usr/bin/env bash
# The bounded soak: the bench server pinned to core 0, `loadgen soak` on core 1, steady
# traffic and a reconnect storm of 2,000 clients every minute, for 10 minutes unless told
# otherwise; the server's RSS, anonymous memory and engine stats after each storm, and the
# RSS slope per storm after the first.
#
#   benches/soak.sh                          # 10 minutes
#   benches/soak.sh --minutes 3              # shorter (any `loadgen soak` flag passes through)
#   SERVER_ENV=MALLOC_ARENA_MAX=2 benches/soak.sh   # the server with glibc's arenas capped
#
# Environment: STORE (sqlite, the default, or memory or postgres), PORT (4180),
# SERVER_ENV (VAR=value pairs for the server only). Everything listens on 127.0.0.1 only.
set -euo pipefail

BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCHES/.." && pwd)"
OUT="$BENCHES/results"
mkdir -p "$OUT"
STAMP="$(date +%Y%m%d-%H%M%S)"
STORE="${STORE:-sqlite}"
PORT="${PORT:-4180}"
SECRET="soak-secret-$STAMP"
KEY="soak-key-$STAMP"
read -r -a SERVER_VARS <<<"${SERVER_ENV:-}"

ulimit -n 1048576 2>/dev/null || ulimit -n 524288 2>/dev/null || ulimit -n 65536 2>/dev/null || true
if [ "$(nproc)" -ge 2 ]; then SERVER_CPU=(taskset -c 0); LOADGEN_CPU=(taskset -c 1);
else SERVER_CPU=(); LOADGEN_CPU=(); fi

(cd "$ROOT" && cargo build --release -p chat-benches --bins --quiet)
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
env "${SERVER_VARS[@]}" "${SERVER_CPU[@]}" "$TARGET_DIR/release/bench-server" --store "$STORE" \
  --addr "127.0.0.1:$PORT" --secret "$SECRET" --admin-key "$KEY" >"$OUT/soak-server-$STAMP.log" 2>&1 &
SERVER_PID=$!
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$SERVER_PID" || { echo "the server did not start"; exit 1; }
  sleep 0.1
done

"${LOADGEN_CPU[@]}" "$TARGET_DIR/release/loadgen" soak --label "ours-$STORE${SERVER_ENV:+ ($SERVER_ENV)}" \
  --addr "127.0.0.1:$PORT" --pid "$SERVER_PID" --secret "$SECRET" --admin-key "$KEY" \
  --rooms 20 --rate 5 --concurrency 512 --json "$OUT/soak-$STAMP.jsonl" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
