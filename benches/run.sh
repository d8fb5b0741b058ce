#!/usr/bin/env bash
# Reproduces the load-generator section of BENCHMARKS.md in one command:
#
#   benches/run.sh            # the full run (about 25 minutes on 2 cores, plus about a
#                             # minute per target for the connect storms)
#   benches/run.sh --quick    # tiny numbers, to check the harness (about 3 minutes)
#
# It installs what the peers need (npm ci, a venv under peers/, cargo build of the
# socketioxide peer), builds ours in release, runs the criterion benches briefly, then
# the connect storms (join, then reconnect, on a fresh server) and every other scenario
# against our server (memory, SQLite, PostgreSQL) and each peer, with the
# server pinned to core 0 and the load generator to core 1, and writes the table between
# the loadgen markers of BENCHMARKS.md. Everything listens on 127.0.0.1 only.
#
# Environment: TARGETS (space-separated subset of the labels below), CHAT_TEST_PG_URL
# (default postgres://postgres@127.0.0.1:5432/postgres), SKIP_CRITERION=1, ONLY=connstorm,
# ONLY=rest or ONLY=fanout (the connect storms alone, everything else, or the seven fan-out
# scenarios alone; a partial run writes its section to benches/results/partial-STAMP.md
# instead of BENCHMARKS.md).
#
# Target ours-memory-proto is our server on the memory store spoken to over the binary
# subprotocol chat.v1.proto (protobuf frames); it runs the idle and fan-out scenarios.
set -euo pipefail

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCHES/.." && pwd)"
PEERS="$BENCHES/peers"
OUT="$BENCHES/results"
mkdir -p "$OUT"
STAMP="$(date +%Y%m%d-%H%M%S)"
JSON="$OUT/loadgen-$STAMP.jsonl"
CONTEXT="$OUT/context-$STAMP.md"
LOG="$OUT/run-$STAMP.log"
SECRET="bench-secret-$STAMP"
TARGETS="${TARGETS:-ours-memory ours-memory-proto ours-sqlite ours-postgres socketioxide socketio pyws}"
ONLY="${ONLY:-}"
REPORT_MD="$ROOT/BENCHMARKS.md"
[ -n "$ONLY" ] && REPORT_MD="$OUT/partial-$STAMP.md"
runs() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
export CHAT_TEST_PG_URL="${CHAT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# The busiest processes right now (a 1-second top sample), for "what else was running".
busy() {
  local b
  b="$(top -b -n 2 -d 1 -o %CPU 2>/dev/null | awk '/^top -/ {n++} n == 2 && /^ *[0-9]+ / && $9 + 0 >= 5 && $12 != "top" {printf "%s %s%%; ", $12, $9}' | head -c 400)"
  echo "${b:-nothing above 5% of a core}"
}

say() { printf '\n== %s\n' "$*" | tee -a "$LOG"; }

# Thousands of sockets on each side.
ulimit -n 1048576 2>/dev/null || ulimit -n 524288 2>/dev/null || ulimit -n 65536 2>/dev/null || true
CORES="$(nproc)"
if [ "$CORES" -ge 2 ]; then SERVER_CPU=(taskset -c 0); LOADGEN_CPU=(taskset -c 1);
else SERVER_CPU=(); LOADGEN_CPU=(); fi

# ---------------------------------------------------------------- install and build
say "installing the peers' dependencies"
(cd "$PEERS/socketio" && npm ci --no-audit --no-fund --loglevel=error) >>"$LOG" 2>&1
if [ ! -x "$PEERS/python-websockets/.venv/bin/python" ]; then
  python3 -m venv "$PEERS/python-websockets/.venv"
fi
"$PEERS/python-websockets/.venv/bin/pip" install -q -r "$PEERS/python-websockets/requirements.txt" >>"$LOG" 2>&1
say "building the socketioxide peer and ours (release)"
(cd "$PEERS/socketioxide" && cargo build --release --quiet) >>"$LOG" 2>&1
(cd "$ROOT" && cargo build --release -p chat-benches --bins --quiet) >>"$LOG" 2>&1
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
LOADGEN="$TARGET_DIR/release/loadgen"
SERVER="$TARGET_DIR/release/bench-server"

# ---------------------------------------------------------------- context
{
  echo "Reproduce with \`benches/run.sh$([ $QUICK = 1 ] && echo ' --quick')\` (run $STAMP; raw results in \`benches/results/\`, not committed)."
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)."
  echo "Server pinned to core 0 (\`taskset -c 0\`, so ours runs one tokio worker), load generator to core 1 (\`taskset -c 1\`, one worker); loopback TCP; 64-byte bodies carrying a send timestamp."
  echo "Load average when the run started: $(cut -d' ' -f1-3 /proc/loadavg). Busiest processes then (percent of one core, 1-second sample): $(busy)"
  echo "Ours: the bench server (\`benches/src/bin/bench-server.rs\`), \`chat_transport_ws::serve\` with the default transport settings except no flood cap, no pings or idle timeout during a run, and no per-session command rate (serve sets TCP_NODELAY since ba99102)."
  echo "Peers: \`benches/peers/\` (Socket.IO $(cd "$PEERS/socketio" && node -p 'require("socket.io/package.json").version') on Node $(node --version), Python websockets $("$PEERS/python-websockets/.venv/bin/python" -c 'import websockets; print(websockets.__version__)') on $("$PEERS/python-websockets/.venv/bin/python" --version 2>&1), socketioxide $(grep -A1 'name = "socketioxide"' "$PEERS/socketioxide/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p' | head -1) on a current-thread tokio runtime)."
  echo "Fan-out rows are at a fixed *offered* load (the target's rate): a server that cannot keep up delivers less, and ours then cuts slow consumers (invariant 7) where the peers buffer without bound."
} >"$CONTEXT"

# ---------------------------------------------------------------- criterion
if [ "${SKIP_CRITERION:-0}" != 1 ]; then
  say "criterion benches (brief)"
  CRIT_TIME=2; [ $QUICK = 1 ] && CRIT_TIME=1
  (cd "$ROOT" && "${LOADGEN_CPU[@]}" cargo bench -p chat-benches --bench fanout --bench protocol -- \
      --warm-up-time 1 --measurement-time "$CRIT_TIME" 2>/dev/null) | tee -a "$LOG" >"$OUT/criterion-$STAMP.txt" || true
  {
    echo
    echo "Criterion (in process, \`cargo bench -p chat-benches\`, this run, load generator's core):"
    echo
    echo "| bench | time (median) | throughput (median) |"
    echo "|---|---:|---:|"
    awk '/^(engine_fanout|protocol)\// {name=$1} /^ *time:/ {t=$4" "$5} /^ *thrpt:/ && !seen[name]++ {print "| " name " | " t " | " $4" "$5 " |"}' "$OUT/criterion-$STAMP.txt"
    echo
    echo "engine_fanout counts frames queued (deliveries) per second; protocol counts bytes."
  } >>"$CONTEXT"
fi

# ---------------------------------------------------------------- scenarios
{ echo; echo "What else was running (other engineers build and test on the same 2 cores):"; echo; } >>"$CONTEXT"
if [ $QUICK = 1 ]; then
  IDLE_N=500; BIG_R=10; BIG_M=20; D=2; W=1; RT=300; STORM_M=20
else
  IDLE_N=10000; BIG_R=100; BIG_M=100; D=4; W=1; RT=2000; STORM_M=100
fi

wait_port() { # port pid
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

lg() { # label proto port pid kind name args...
  local label=$1 proto=$2 port=$3 pid=$4 kind=$5 name=$6; shift 6
  echo "-- $label $name" | tee -a "$LOG"
  timeout 300 "${LOADGEN_CPU[@]}" "$LOADGEN" run "$kind" --name "$name" --label "$label" --proto "$proto" \
    --addr "127.0.0.1:$port" --pid "$pid" --secret "$SECRET" --json "$JSON" "$@" 2>&1 | tee -a "$LOG" || true
}

scenarios() { # label proto port pid [subset: all, fanout (idle + fan-outs), fanout-only]
  local l=$1 p=$2 port=$3 pid=$4 subset=${5:-all}
  if [ "$subset" = all ] || [ "$subset" = fanout ]; then
    lg "$l" "$p" "$port" "$pid" idle idle-10k --connections "$IDLE_N" --duration 3 --concurrency 256
  fi
  lg "$l" "$p" "$port" "$pid" fanout fanout-10x50 --rooms 10 --members 50 --offered 1000000 --duration $D --warmup $W
  lg "$l" "$p" "$port" "$pid" fanout fanout-10x50-at-200k --rooms 10 --members 50 --offered 200000 --duration $D --warmup $W
  lg "$l" "$p" "$port" "$pid" fanout fanout-100x100 --rooms $BIG_R --members $BIG_M --offered 300000 --duration $D --warmup $W --concurrency 256
  lg "$l" "$p" "$port" "$pid" fanout fanout-100x100-at-100k --rooms $BIG_R --members $BIG_M --offered 100000 --duration $D --warmup $W --concurrency 256
  # Below saturation: SQLite against memory at 600k/s and 50k/s, latency at 20k/s.
  lg "$l" "$p" "$port" "$pid" fanout fanout-10x50-at-600k --rooms 10 --members 50 --offered 600000 --duration $D --warmup $W
  lg "$l" "$p" "$port" "$pid" fanout fanout-100x100-at-50k --rooms $BIG_R --members $BIG_M --offered 50000 --duration $D --warmup $W --concurrency 256
  lg "$l" "$p" "$port" "$pid" fanout fanout-100x100-at-20k --rooms $BIG_R --members $BIG_M --offered 20000 --duration $D --warmup $W --concurrency 256
  [ "$subset" = all ] || return 0
  lg "$l" "$p" "$port" "$pid" pingpong pingpong --round-trips $RT --duration 5
  if [ "$subset" = all ]; then
    lg "$l" "$p" "$port" "$pid" slow slow-10x50 --rooms 10 --members 50 --offered 200000 --slow 0.1 --duration $((D + 3)) --warmup $W
    lg "$l" "$p" "$port" "$pid" storm storm-10x100 --rooms 10 --members $STORM_M --rate 50 --duration 5 --warmup 1 --concurrency 512
  fi
}

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

start_server() { # port command...
  local port=$1; shift
  "${SERVER_CPU[@]}" "$@" >>"$LOG" 2>&1 &
  SERVER_PID=$!
  if ! wait_port "$port" "$SERVER_PID"; then
    echo "server on $port did not come up: $*" | tee -a "$LOG"
    stop_server
    return 1
  fi
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

# The command that serves target $1 on port $2 (CMD) and the protocol it speaks (PROTO);
# fails when the target cannot run here.
server_cmd() {
  local t=$1 port=$2
  case $t in
    ours-memory|ours-sqlite|ours-postgres)
      if [ "$t" = ours-postgres ] && ! pg_up; then
        echo "PostgreSQL is not answering on 127.0.0.1:5432: skipped" | tee -a "$LOG"
        echo "ours-postgres skipped: PostgreSQL was not answering on 127.0.0.1:5432." >>"$CONTEXT"
        return 1
      fi
      CMD=("$SERVER" --store "${t#ours-}" --addr "127.0.0.1:$port" --secret "$SECRET"); PROTO=chat ;;
    ours-memory-proto)
      CMD=("$SERVER" --store memory --addr "127.0.0.1:$port" --secret "$SECRET"); PROTO=chat-proto ;;
    socketioxide) CMD=("$PEERS/socketioxide/target/release/peer-socketioxide" "$port"); PROTO=socketio ;;
    socketio) CMD=(node "$PEERS/socketio/server.js" "$port"); PROTO=socketio ;;
    pyws) CMD=("$PEERS/python-websockets/.venv/bin/python" "$PEERS/python-websockets/server.py" "$port"); PROTO=pyws ;;
    *) echo "unknown target $t" | tee -a "$LOG"; return 1 ;;
  esac
}

PORT=4100
for t in $TARGETS; do
  PORT=$((PORT + 2))
  say "$t"
  echo "- before $t: load average $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busy)" >>"$CONTEXT"
  server_cmd "$t" "$PORT" || continue
  # The connect storms first, on a server of their own, so that their memory figure
  # starts from a fresh process.
  if [ "$PROTO" != chat-proto ] && runs connstorm && start_server "$PORT" "${CMD[@]}"; then
    lg "$t" "$PROTO" "$PORT" "$SERVER_PID" connstorm connstorm-10k --rooms $BIG_R --members $BIG_M --arrivals 20000 --duration 5
  fi
  stop_server
  runs rest || runs fanout || continue
  server_cmd "$t" "$((PORT + 1))" || continue
  subset=all
  [ "$PROTO" = chat-proto ] && subset=fanout
  [ "$ONLY" = fanout ] && subset=fanout-only
  start_server "$((PORT + 1))" "${CMD[@]}" && scenarios "$t" "$PROTO" "$((PORT + 1))" "$SERVER_PID" "$subset"
  stop_server
done

echo "- at the end: load average $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busy)" >>"$CONTEXT"
say "writing $REPORT_MD"
"$LOADGEN" report --json "$JSON" --out "$REPORT_MD" --context "$CONTEXT" --appendix "$BENCHES/analysis.md" | tee -a "$LOG"
echo "done: $REPORT_MD (log: $LOG)"
