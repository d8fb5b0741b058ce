#!/usr/bin/env bash
# The TypeScript client's tests against the real chat-server: installs the npm packages
# when missing, builds the client and the server, runs `node --test`.
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"

if [ ! -d node_modules/typescript ] || [ ! -d node_modules/ws ]; then
  npm ci --no-audit --no-fund --silent
fi
npm run --silent build
(cd "$repo" && cargo build -p chat-server)
export CHAT_SERVER_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/chat-server"
node --test test/*.test.mjs
