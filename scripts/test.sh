#!/usr/bin/env bash
# Runs every test of the workspace. Starts what the tests need when it is not running:
# PostgreSQL on 127.0.0.1:5432 (override with CHAT_TEST_PG_URL; Debian's is installed,
# trusting 127.0.0.1, when there is none); installs redis-server and nats-server when
# missing (the tests run their own on free ports), and node and npm (Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."

export CHAT_TEST_PG_URL="${CHAT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# chat-store-postgres: under CI, run the test that restarts PostgreSQL mid-run.
if [ "${CI:-}" = "true" ]; then export CHAT_TEST_PG_RESTART="${CHAT_TEST_PG_RESTART:-1}"; fi

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  echo "test.sh: PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ] || [ -z "$(ls /etc/postgresql)" ]; then
    # None here: install Debian's, whose package makes a cluster `main`. The tests connect
    # as `postgres` over TCP without a password, so this fresh cluster (only one this
    # script made) trusts 127.0.0.1.
    echo "test.sh: installing postgresql" >&2
    apt_install postgresql
    hba="/etc/postgresql/$(ls /etc/postgresql | head -n1)/main/pg_hba.conf"
    $SUDO sed -i -E 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+)[^[:space:]]+#\1trust#' "$hba"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main stop 2>/dev/null || true
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "test.sh: PostgreSQL could not be started" >&2; exit 1; }
fi

# The bus and cluster tests start their own redis-server and nats-server on free ports
# (never the shared ones): install the binaries from Debian's packages when missing.
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
{ command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; } || need+=(nats-server)
if [ "${#need[@]}" -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  apt_install "${need[@]}"
  # The Debian service would take the standard port; the tests need only the binary.
  $SUDO systemctl disable --now redis-server 2>/dev/null || true
fi

# The browser test and the TypeScript client's tests run on node and npm.
{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || apt_install nodejs npm

cargo test --workspace "$@"

# The demo page in a real browser (installs chromium and the npm packages when missing).
bash scripts/browser-test.sh

# The TypeScript client (clients/typescript) against the real chat-server, with a chaos
# proxy and a server restart (installs its npm packages when missing).
bash clients/typescript/test.sh

# The reference gRPC chat service's three calls from a client we did not write (Python
# grpcio, installed into a venv under target/) over mutual TLS against the real chat-server.
SERVER=chat-server bash scripts/grpc-interop.sh
