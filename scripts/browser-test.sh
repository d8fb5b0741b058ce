#!/usr/bin/env bash
# The demo page in headless Chromium (chat-server/tests/browser/browser.test.mjs): two
# users become friends, chat in a room and directly, and see typing, members and the read
# receipt; the page 400 px wide; a reply made in the page shown as a reply to the other
# user, with the root's live reply count and an attachment's link; the server restarted
# under open pages (the pages reconnect and show every message once). Once over http,
# once over https.
# First rebuilds the page's client (scripts/build-web.sh) and fails when the committed
# chat-server/static/chat-client.js is stale.
# Screenshots go to $CARGO_TARGET_DIR/browser/ (…/browser/tls/ for the https run;
# target/browser/ without CARGO_TARGET_DIR).
# Installs Debian's chromium and the test's npm packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}
if ! command -v chromium >/dev/null 2>&1; then
  echo "browser-test.sh: installing Debian's chromium" >&2
  apt_install chromium
fi
# The https run makes its certificate with openssl; the test runs on node and npm.
command -v openssl >/dev/null 2>&1 || apt_install openssl
{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || apt_install nodejs npm
if [ ! -d chat-server/tests/browser/node_modules/playwright-core ]; then
  (cd chat-server/tests/browser && npm ci --no-audit --no-fund --silent)
fi

# The page imports the TypeScript client as built from clients/typescript: the committed
# copy must be what the client's source builds to.
bash scripts/build-web.sh
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "browser-test.sh: not a git checkout: cannot tell whether chat-client.js was stale" >&2
elif ! git diff --exit-code --stat chat-server/static/chat-client.js; then
  echo "browser-test.sh: chat-server/static/chat-client.js is stale: run bash scripts/build-web.sh and commit it" >&2
  exit 1
fi

cargo build -p chat-server
target="${CARGO_TARGET_DIR:-$PWD/target}"
# Twice: over http and ws, then over https and wss (a self-signed certificate, which
# Chromium is told to accept: --ignore-certificate-errors, for that run only).
for tls in 0 1; do
  CARGO_TARGET_DIR="$target" \
  CHAT_SERVER_BIN="$target/debug/chat-server" \
  CHAT_SCREENSHOTS="$target/browser" \
  CHAT_BROWSER_TLS="$tls" \
  CHROMIUM="$(command -v chromium)" \
    node --test chat-server/tests/browser/browser.test.mjs
done
