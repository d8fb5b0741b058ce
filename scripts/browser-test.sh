#!/usr/bin/env bash
# The demo page in headless Chromium: two users become friends, chat in a room and
# directly, and see typing and the read receipt. Screenshots go to target/browser/.
# Installs Debian's chromium and the test's npm packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "browser-test.sh: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
if [ ! -d chat-server/tests/browser/node_modules/playwright-core ]; then
  (cd chat-server/tests/browser && npm ci --no-audit --no-fund --silent)
fi

cargo build -p chat-server
CHAT_SERVER_BIN="$PWD/target/debug/chat-server" \
CHAT_SCREENSHOTS="$PWD/target/browser" \
CHROMIUM="$(command -v chromium)" \
  node --test chat-server/tests/browser/browser.test.mjs
