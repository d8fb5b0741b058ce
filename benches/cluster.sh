#!/usr/bin/env bash
# Several nodes: the fan-out with every room's members split over two (and four) bench
# servers that share one PostgreSQL schema and a bus (Redis, then NATS), against one node
# on the in-process bus (PostgreSQL store, then the memory store). Every server, Redis and NATS
# of the run is started here on free loopback ports and stopped at the end; the shared
# Redis (6379) and NATS (4222) are never used.
#
#   benches/cluster.sh            # about 11 minutes on 2 cores
#   benches/cluster.sh --quick    # tiny numbers, checks the script in about 2 minutes
#   CONFIGS="redis nats" benches/cluster.sh
#
# Configurations (CONFIGS):
#   memory-store        1 node, memory store, in-process bus
#   memory-store-redis  1 node alone on Redis, memory store (`--one-node-bus`): what the
#   memory-store-nats   bus costs one node and the bus server, without PostgreSQL's noise
#                       (the node's publications come back to it and are dropped)
#   memory              1 node, PostgreSQL, in-process bus: the baseline of the next four
#   redis, nats         2 nodes, one PostgreSQL schema, Redis or NATS
#   redis-4, nats-4     4 nodes, likewise (fanout-10x50 only)
#
# Pinning (2 cores): node A on core 0 (`taskset -c 0`), node B on core 1; a single node on
# core 0; with four nodes, A and C on core 0, B and D on core 1. The load generator,
# redis-server / nats-server and PostgreSQL are not pinned: they share both cores with
# the nodes. Each node runs one tokio worker (one core allowed).
#
# Per configuration, on fresh servers (and a fresh schema), the load generator runs:
#   xnode-1x4      1 room × 4 members (two on each node), 12.5 msg/s each (50 msg/s):
#                  latency of deliveries on the sender's node and of those across the bus
#   pairs-100x2    100 rooms × 2 members (one on each node), PAIR_RATE msg/s each: one
#                  delivery per message, across the bus; the bus's own cost per message
#   acks-100x2     the overload scenario far below overload: the same 200 clients offer
#                  ACK_RATE sends/s open-loop; the time from a send to its `sent` reply
#   fanout-10x50   10 rooms × 50 members at OFFERED_10X50 deliveries/s
#   fanout-100x100 100 rooms × 100 members at OFFERED_100X100 deliveries/s
#   idle-100x100   (redis, nats) the same 10,000 clients sending nothing: presence only
# (the one-node-on-a-server-bus configurations run pairs, acks and fanout-10x50; the
# four-node ones fanout-10x50 alone). Over each measured window it reads every node's CPU
# and engine stats (`--admin-key`), the bus server's CPU (`--watch`) and its counters
# (Redis `INFO commandstats`, NATS `/varz`), and its own CPU. The markdown tables are
# printed at the end (`loadgen cluster-table`).
#
# Environment: CONFIGS (all of the above), SCENARIOS (all; names as above, e.g.
# "fanout-10x50 xnode-1x4"), OFFERED_10X50 (100000), OFFERED_100X100 (50000), PAIR_RATE
# (25), ACK_RATE (1000), DURATION (10), WARMUP (2), LATENCY_DURATION (20),
# CHAT_TEST_PG_URL (postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail

BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCHES/.." && pwd)"
OUT="$BENCHES/results"
mkdir -p "$OUT"
STAMP="$(date +%Y%m%d-%H%M%S)"
JSON="$OUT/cluster-$STAMP.jsonl"
LOG="$OUT/cluster-$STAMP.log"
CONFIGS="${CONFIGS:-memory-store memory-store-redis memory-store-nats memory redis nats redis-4 nats-4}"
OFFERED_10X50="${OFFERED_10X50:-100000}"
OFFERED_100X100="${OFFERED_100X100:-50000}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
LATENCY_DURATION="${LATENCY_DURATION:-20}"
PAIR_RATE="${PAIR_RATE:-25}"
ACK_RATE="${ACK_RATE:-1000}"
ROOMS_BIG=100
MEMBERS_BIG=100
if [ "${1:-}" = "--quick" ]; then
  OFFERED_10X50=20000; OFFERED_100X100=5000; DURATION=3; WARMUP=1; LATENCY_DURATION=3
  PAIR_RATE=5; ACK_RATE=200
  ROOMS_BIG=10; MEMBERS_BIG=100
fi
PG_URL="${CHAT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SECRET="cluster-secret-$STAMP-$RANDOM"
KEY="cluster-key-$STAMP-$RANDOM"
WORK="$(mktemp -d -t chat-cluster-XXXXXX)"

ulimit -n 1048576 2>/dev/null || ulimit -n 524288 2>/dev/null || ulimit -n 65536 2>/dev/null || true
if [ "$(nproc)" -ge 2 ]; then CORE_A=(taskset -c 0); CORE_B=(taskset -c 1);
else CORE_A=(); CORE_B=(); fi

(cd "$ROOT" && cargo build --release -p chat-benches --bins --quiet)
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
SERVER="$TARGET_DIR/release/bench-server"
LOADGEN="$TARGET_DIR/release/loadgen"
NATS_SERVER="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

PIDS=()      # every process started here, stopped in reverse order
SCHEMA=""
stop_all() {
  local i pid
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do
    pid=${PIDS[$i]}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  if [ -n "$SCHEMA" ]; then
    psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
    SCHEMA=""
  fi
}
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT

wait_port() { # port pid what
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$3 did not start (log: $LOG)"; exit 1
}

BUS_PID=""; BUS_URL=""; BUS_FLAGS=()
start_redis() {
  local port; port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK" >>"$LOG" 2>&1 &
  BUS_PID=$!; PIDS+=("$BUS_PID")
  wait_port "$port" "$BUS_PID" redis-server
  BUS_URL="redis://127.0.0.1:$port"
  BUS_FLAGS=(--watch "redis-server=$BUS_PID" --redis-info "127.0.0.1:$port")
}
start_nats() {
  local port mport; port=$(free_port); mport=$(free_port)
  mkdir -p "$WORK/js-$port"
  "$NATS_SERVER" -js -a 127.0.0.1 -p "$port" -m "$mport" -sd "$WORK/js-$port" >>"$LOG" 2>&1 &
  BUS_PID=$!; PIDS+=("$BUS_PID")
  wait_port "$port" "$BUS_PID" nats-server
  wait_port "$mport" "$BUS_PID" "nats-server monitoring"
  BUS_URL="nats://127.0.0.1:$port"
  BUS_FLAGS=(--watch "nats-server=$BUS_PID" --nats-monitor "127.0.0.1:$mport")
}

NODE_ADDRS=(); NODE_PIDS=()
start_node() { # core-prefix-array-name store bus [flags...]
  local -n pin=$1
  local port; port=$(free_port)
  local schema_flags=("${@:4}")
  if [ "$2" = postgres ]; then schema_flags+=(--pg-schema "$SCHEMA"); fi
  CHAT_TEST_PG_URL="$PG_URL" "${pin[@]}" "$SERVER" --store "$2" "${schema_flags[@]}" --bus "$3" \
    --addr "127.0.0.1:$port" --secret "$SECRET" --admin-key "$KEY" >>"$LOG" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  wait_port "$port" "$pid" "bench-server ($3)"
  NODE_ADDRS+=("127.0.0.1:$port"); NODE_PIDS+=("$pid")
}

start_config() { # config
  NODE_ADDRS=(); NODE_PIDS=(); BUS_FLAGS=(); BUS_PID=""
  SCHEMA="cluster_bench_$$_$RANDOM"
  case "$1" in
    memory-store) SCHEMA=""; start_node CORE_A memory memory ;;
    memory) start_node CORE_A postgres memory ;;
    memory-store-redis) SCHEMA=""; start_redis; start_node CORE_A memory "$BUS_URL" --one-node-bus ;;
    memory-store-nats) SCHEMA=""; start_nats; start_node CORE_A memory "$BUS_URL" --one-node-bus ;;
    redis) start_redis; start_node CORE_A postgres "$BUS_URL"; start_node CORE_B postgres "$BUS_URL" ;;
    nats) start_nats; start_node CORE_A postgres "$BUS_URL"; start_node CORE_B postgres "$BUS_URL" ;;
    redis-4|nats-4)
      if [ "$1" = redis-4 ]; then start_redis; else start_nats; fi
      start_node CORE_A postgres "$BUS_URL"; start_node CORE_B postgres "$BUS_URL"
      start_node CORE_A postgres "$BUS_URL"; start_node CORE_B postgres "$BUS_URL" ;;
    *) echo "unknown configuration $1"; exit 2 ;;
  esac
}

label_of() {
  case "$1" in
    memory-store) echo "1 node, memory store" ;;
    memory) echo "1 node, memory bus, PostgreSQL" ;;
    memory-store-redis) echo "1 node alone on Redis, memory store" ;;
    memory-store-nats) echo "1 node alone on NATS, memory store" ;;
    redis) echo "2 nodes, Redis, PostgreSQL" ;;
    nats) echo "2 nodes, NATS, PostgreSQL" ;;
    redis-4) echo "4 nodes, Redis, PostgreSQL" ;;
    nats-4) echo "4 nodes, NATS, PostgreSQL" ;;
  esac
}

busiest() { # processes above 5% of a core over one second, not ours
  top -b -n 2 -d 1 -w 200 | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 5 {printf "%s %s%%, ", $12, $9}' | sed 's/, $//'
}

wanted() { # scenario name: in SCENARIOS (or SCENARIOS unset)
  [ -z "${SCENARIOS:-}" ] || [[ " $SCENARIOS " == *" $1 "* ]]
}

run() { # config name rooms members extra-flags...
  local config=$1 name=$2 rooms=$3 members=$4; shift 4
  wanted "$name" || return 0
  local addrs pids
  addrs=$(IFS=,; echo "${NODE_ADDRS[*]}"); pids=$(IFS=,; echo "${NODE_PIDS[*]}")
  echo "== $(label_of "$config"): $name; load average $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busiest)" | tee -a "$LOG"
  timeout 400 "$LOADGEN" run fanout --name "$name" --label "$(label_of "$config")" \
    --addr "$addrs" --pid "$pids" "${BUS_FLAGS[@]}" --secret "$SECRET" --admin-key "$KEY" \
    --rooms "$rooms" --members "$members" --concurrency 256 --json "$JSON" "$@"
}

acks() { # config name extra-flags...
  local config=$1 name=$2; shift 2
  wanted "$name" || return 0
  local addrs
  addrs=$(IFS=,; echo "${NODE_ADDRS[*]}")
  echo "== $(label_of "$config"): $name; load average $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busiest)" | tee -a "$LOG"
  timeout 400 "$LOADGEN" run overload --name "$name" --label "$(label_of "$config")" \
    --addr "$addrs" --pid "${NODE_PIDS[0]}" --secret "$SECRET" --admin-key "$KEY" \
    --rooms 100 --members 2 --concurrency 256 --json "$JSON" "$@"
}

for config in $CONFIGS; do
  start_config "$config"
  case "$config" in
    memory-store-redis|memory-store-nats)
      run "$config" pairs-100x2 100 2 --rate "$PAIR_RATE" --duration "$DURATION" --warmup "$WARMUP"
      acks "$config" acks-100x2 --sends-per-s "$ACK_RATE" --duration "$DURATION" --warmup "$WARMUP"
      run "$config" fanout-10x50 10 50 --offered "$OFFERED_10X50" --duration "$DURATION" --warmup "$WARMUP"
      ;;
    redis-4|nats-4)
      run "$config" fanout-10x50 10 50 --offered "$OFFERED_10X50" --duration "$DURATION" --warmup "$WARMUP"
      ;;
    *)
      run "$config" xnode-1x4 1 4 --rate 12.5 --duration "$LATENCY_DURATION" --warmup "$WARMUP"
      run "$config" pairs-100x2 100 2 --rate "$PAIR_RATE" --duration "$DURATION" --warmup "$WARMUP"
      acks "$config" acks-100x2 --sends-per-s "$ACK_RATE" --duration "$DURATION" --warmup "$WARMUP"
      run "$config" fanout-10x50 10 50 --offered "$OFFERED_10X50" --duration "$DURATION" --warmup "$WARMUP"
      run "$config" "fanout-${ROOMS_BIG}x${MEMBERS_BIG}" "$ROOMS_BIG" "$MEMBERS_BIG" \
        --offered "$OFFERED_100X100" --duration "$DURATION" --warmup "$WARMUP"
      if [ "$config" = redis ] || [ "$config" = nats ]; then
        run "$config" "idle-${ROOMS_BIG}x${MEMBERS_BIG}" "$ROOMS_BIG" "$MEMBERS_BIG" \
          --rate 0 --duration "$DURATION" --warmup "$WARMUP"
      fi
      ;;
  esac
  stop_all
done

echo
echo "Results: $JSON (log: $LOG)"
"$LOADGEN" cluster-table --json "$JSON"
