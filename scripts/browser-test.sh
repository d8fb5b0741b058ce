#!/usr/bin/env bash
# The demo page in headless Chromium: two users become friends, chat in a room and
# directly, and see typing and the read receipt; once over http, once over https.
# Screenshots go to target/browser/ (target/browser/tls/ for the https run).
# Installs Debian's chromium and the test's npm packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "browser-test.sh: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
if ! command -v openssl >/dev/null 2>&1; then
  # The https run makes its certificate with openssl.
  DEBIAN_FRONTEND=noninteractive apt-get install -y openssl >/dev/null
fi
if [ ! -d chat-server/tests/browser/node_modules/playwright-core ]; then
  (cd chat-server/tests/browser && npm ci --no-audit --no-fund --silent)
fi

cargo build -p chat-server
target="${CARGO_TARGET_DIR:-$PWD/target}"
# Twice: over http and ws, then over https and wss (a self-signed certificate, which
# Chromium is told to accept: --ignore-certificate-errors, for that run only).
for tls in 0 1; do
  CHAT_SERVER_BIN="$target/debug/chat-server" \
  CHAT_SCREENSHOTS="$target/browser" \
  CHAT_BROWSER_TLS="$tls" \
  CHROMIUM="$(command -v chromium)" \
    node --test chat-server/tests/browser/browser.test.mjs
done
