#!/usr/bin/env bash
# gRPC against WebSocket, and what TLS costs, on our bench server (memory store).
#
#   benches/grpc-tls.sh            # a few minutes on 2 cores
#
# One bench server per row (fresh engine), pinned to core 0; the load generator on core 1.
# Rows: fan-out 10 rooms × 50 and 100 × 100 over WebSocket (protocol v1) and over gRPC
# (one Connect stream per member); fan-out 10 × 50 over wss:// and over gRPC with TLS;
# 2,000 connects (handshake, hello) over ws:// and wss://. TLS uses a CA and a
# `localhost` / 127.0.0.1 certificate made here with openssl, removed on exit.
# Everything is on 127.0.0.1; every run is bounded (loadgen's own limits plus timeout).
# Raw JSON lines go to benches/results/grpc-tls-DATE.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/release"
RUN="$(date -u +%Y%m%d-%H%M%S)"
mkdir -p benches/results
JSON="benches/results/grpc-tls-$RUN.jsonl"
TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

cargo build --release -q -p chat-benches --bins

CORES="$(nproc)"
SERVER_CPU=(); LOADGEN_CPU=()
if [ "$CORES" -ge 2 ]; then SERVER_CPU=(taskset -c 0); LOADGEN_CPU=(taskset -c 1); fi

# Another engineer's benchmark on the same cores would skew ours: wait (at most 20
# minutes) until no bench server, load generator, benchmark Redis or NATS server runs.
# The system's own redis-server on :6379 and nats-server on :4222 are not benchmarks.
others() {
  { pgrep -af '/release/(bench-server|loadgen)( |$)' || true
    pgrep -af 'redis-server' | grep -v ':6379$' || true
    pgrep -af 'nats-server' | grep -v -- '-p 4222 ' || true
  } | grep -v "^$$ " || true
}
# Checked again before every row (all the waits together at most 20 minutes); a row
# during which one started is flagged CONTENDED in the summary.
WAIT_UNTIL=$(( $(date +%s) + 1200 ))
wait_quiet() {
  while [ -n "$(others)" ]; do
    if [ "$(date +%s)" -ge "$WAIT_UNTIL" ]; then
      echo "grpc-tls.sh: other benchmarks still running after 20 minutes:" >&2
      others >&2
      exit 1
    fi
    sleep 5
  done
}
wait_quiet
: >"$TMP/contended"

# Test PKI: a CA and a server certificate for localhost and 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=bench CA" -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$TMP/server.key" -out "$TMP/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TMP/ext.cnf"
openssl x509 -req -in "$TMP/server.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
  -days 1 -extfile "$TMP/ext.cnf" -out "$TMP/server.pem" 2>/dev/null

WS=127.0.0.1:4310
GRPC=127.0.0.1:4311

start_server() { # [tls]
  local tls=()
  if [ "${1:-}" = tls ]; then tls=(--tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key"); fi
  "${SERVER_CPU[@]}" "$BIN/bench-server" --store memory --addr "$WS" --grpc "$GRPC" "${tls[@]}" \
    >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    grep -q '^grpc listening' "$TMP/server.log" && return 0
    sleep 0.1
  done
  echo "bench-server did not start:" >&2; cat "$TMP/server.log" >&2; exit 1
}
stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
}
row() { # tls|plain LABEL ARGS...
  local mode="$1"; shift
  wait_quiet
  start_server "$([ "$mode" = tls ] && echo tls)"
  local cmd=("${LOADGEN_CPU[@]}" "$BIN/loadgen" run "$@" --pid "$SERVER_PID" --json "$JSON")
  echo "+ ${cmd[*]}"
  timeout 300 "${cmd[@]}" || echo "(row failed: $*)"
  stop_server
  if [ -n "$(others)" ]; then
    echo "CONTENDED: another benchmark ran during this row:"; others
    echo "$*" >>"$TMP/contended"
  fi
}

FAN=(--duration 4 --warmup 1)
row plain fanout --name fanout-10x50 --label ws --addr "$WS" --rooms 10 --members 50 --offered 1000000 "${FAN[@]}"
row plain fanout --name fanout-10x50 --label grpc --dialect grpc --addr "$GRPC" --rooms 10 --members 50 --offered 1000000 "${FAN[@]}"
row plain fanout --name fanout-100x100 --label ws --addr "$WS" --rooms 100 --members 100 --offered 300000 --concurrency 256 "${FAN[@]}"
row plain fanout --name fanout-100x100 --label grpc --dialect grpc --addr "$GRPC" --rooms 100 --members 100 --offered 300000 --concurrency 256 "${FAN[@]}"
row tls fanout --name fanout-10x50 --label wss --tls-ca "$TMP/ca.pem" --addr "$WS" --rooms 10 --members 50 --offered 1000000 "${FAN[@]}"
row tls fanout --name fanout-10x50 --label grpc-tls --dialect grpc --tls-ca "$TMP/ca.pem" --addr "$GRPC" --rooms 10 --members 50 --offered 1000000 "${FAN[@]}"
row plain idle --name connect-2000 --label ws --addr "$WS" --connections 2000 --duration 1 --warmup 0
row tls idle --name connect-2000 --label wss --tls-ca "$TMP/ca.pem" --addr "$WS" --connections 2000 --duration 1 --warmup 0

echo
echo "== $JSON"
if [ -s "$TMP/contended" ]; then echo "CONTENDED rows (another benchmark ran meanwhile):"; cat "$TMP/contended"; fi
python3 - "$JSON" <<'PY'
import json, sys
print(f"{'scenario':16} {'target':9} {'conns':>6} {'offered/s':>10} {'deliv/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'lost':>8} {'setup s':>8} {'conn/s':>8} {'cpu%':>5}")
for line in open(sys.argv[1]):
    o = json.loads(line)
    f = lambda k, fmt: (fmt.format(o[k]) if o.get(k) is not None else "-")
    cps = f"{o['connections'] / o['setup_s']:.0f}" if o.get("setup_s") else "-"
    print(f"{o['scenario']:16} {o['label']:9} {o['connections']:>6} {f('offered_per_s','{:,.0f}'):>10} {f('deliveries_per_s','{:,.0f}'):>10} {f('p50_ms','{:.2f}'):>8} {f('p99_ms','{:.2f}'):>8} {f('lost','{:,}'):>8} {f('setup_s','{:.2f}'):>8} {cps:>8} {f('server_cpu_pct','{:.0f}'):>5}")
    for n in o.get("notes", []):
        print("   note:", n)
PY
