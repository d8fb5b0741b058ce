#!/usr/bin/env bash
# The reference chat service's three calls from Python (grpcio), over mutual TLS, against
# a chat gRPC server: makes a venv (under target/grpc-interop, or $GRPC_INTEROP_DIR), pip
# installs grpcio and grpcio-tools, generates a client from proto/chat.proto, makes a
# test CA with the openssl commands of docs/grpc.md, starts the server and runs
# scripts/grpc_interop.py.
#
# SERVER=chat-server runs the real chat-server (mutual TLS only; scripts/test.sh does
# this). Otherwise the server is chat-transport-grpc's example `grpc-interop-server`
# (plaintext and mutual TLS on one engine); SERVER_CMD may name
# another command taking the same flags (--cert, --key, --client-ca) and printing
# `plain <addr>` and `tls <addr>` once listening (HS256 tokens with $CHAT_JWT_SECRET).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${GRPC_INTEROP_DIR:-$root/target/grpc-interop}"
mkdir -p "$work"

# 1. Python, grpcio and the generated client.
if [ ! -x "$work/venv/bin/python" ]; then
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv (and pip's bootstrap) into python3-venv.
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
  fi
  python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install --quiet --disable-pip-version-check grpcio grpcio-tools
rm -rf "$work/gen" && mkdir -p "$work/gen"
"$work/venv/bin/python" -m grpc_tools.protoc -I "$root/proto" \
  --python_out="$work/gen" --grpc_python_out="$work/gen" "$root/proto/chat.proto"

# 2. A test CA, a server certificate for localhost, a client certificate for user_789
#    (as in docs/grpc.md).
tls="$work/tls"
rm -rf "$tls" && mkdir -p "$tls"
(
  cd "$tls"
  ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  openssl req -x509 $ec -days 30 -keyout ca-key.pem -out ca-cert.pem -subj "/CN=chat test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req $ec -keyout server-key.pem -out server.csr -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
  openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
    -extfile server.ext -out server-cert.pem 2>/dev/null
  openssl req $ec -keyout client-key.pem -out client.csr -subj "/CN=user_789" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' > client.ext
  openssl x509 -req -in client.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
    -extfile client.ext -out client-cert.pem 2>/dev/null
)

# 3. The server, stopped when this script ends (its standard input closes).
CHAT_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export CHAT_JWT_SECRET
target="${CARGO_TARGET_DIR:-$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')}"
plain="" secure=""
if [ "${SERVER:-}" = "chat-server" ]; then
  # The real binary: gRPC on mutual TLS (client certificates required) beside https/wss,
  # one engine. Its JSON log names the gRPC address.
  (cd "$root" && cargo build --quiet -p chat-server)
  "$target/debug/chat-server" --store memory --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 \
    --log-format json --tls-cert "$tls/server-cert.pem" --tls-key "$tls/server-key.pem" \
    --tls-client-ca "$tls/ca-cert.pem" --tls-client-auth required \
    > "$work/server.out" 2> "$work/server.err" &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
  for _ in $(seq 1 200); do
    secure="$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    try: v = json.loads(line)
    except ValueError: continue
    a = v.get("fields", {}).get("grpc_address")
    if a: print(a.replace("127.0.0.1", "localhost")); break' "$work/server.err")"
    if [ -n "$secure" ]; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.err" >&2; exit 1; fi
    sleep 0.1
  done
  if [ -z "$secure" ]; then echo "grpc-interop.sh: chat-server did not start" >&2; exit 1; fi
else
  if [ -z "${SERVER_CMD:-}" ]; then
    (cd "$root" && cargo build --quiet -p chat-transport-grpc --example grpc-interop-server)
    SERVER_CMD="$target/debug/examples/grpc-interop-server"
  fi
  rm -f "$work/server.in" && mkfifo "$work/server.in"
  # shellcheck disable=SC2086
  $SERVER_CMD --cert "$tls/server-cert.pem" --key "$tls/server-key.pem" --client-ca "$tls/ca-cert.pem" \
    < "$work/server.in" > "$work/server.out" 2> "$work/server.err" &
  server=$!
  exec 3> "$work/server.in"
  trap 'exec 3>&-; wait "$server" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    plain="$(awk '$1 == "plain" {print $2}' "$work/server.out")"
    secure="$(awk '$1 == "tls" {print $2}' "$work/server.out")"
    if [ -n "$plain" ] && [ -n "$secure" ]; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.err" >&2; exit 1; fi
    sleep 0.1
  done
  if [ -z "$plain" ] || [ -z "$secure" ]; then
    echo "grpc-interop.sh: the server did not start" >&2
    exit 1
  fi
fi

# 4. The calls.
"$work/venv/bin/python" "$root/scripts/grpc_interop.py" \
  --gen "$work/gen" --tls-dir "$tls" ${plain:+--plain "$plain"} --tls "$secure"
