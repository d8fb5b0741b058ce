#!/usr/bin/env bash
# Runs every test of the workspace. Starts what the tests need when it is not running:
# PostgreSQL on 127.0.0.1:5432 (override with CHAT_TEST_PG_URL). Installs redis-server
# when missing: chat-bus-redis's tests start their own, each on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

export CHAT_TEST_PG_URL="${CHAT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# chat-store-postgres: under CI, run the test that restarts PostgreSQL mid-run.
if [ "${CI:-}" = "true" ]; then export CHAT_TEST_PG_RESTART="${CHAT_TEST_PG_RESTART:-1}"; fi

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  echo "test.sh: PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "test.sh: PostgreSQL could not be started" >&2; exit 1; }
fi

if ! command -v redis-server >/dev/null 2>&1 && [ -z "${REDIS_SERVER:-}" ]; then
  echo "test.sh: installing redis-server (chat-bus-redis's tests run their own)" >&2
  apt-get install -y redis-server >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y redis-server >/dev/null; }
fi

cargo test --workspace "$@"

# The demo page in a real browser (installs chromium and the npm packages when missing).
bash scripts/browser-test.sh
