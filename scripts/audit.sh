#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database with cargo-audit.
#
# The database is a local git checkout: $CHAT_ADVISORY_DB, else ../shared/advisory-db next
# to this repository's checkout, else ~/.cargo/advisory-db (cargo-audit's own place). When
# none exists, the script tries cargo-audit's own fetch from GitHub; on a machine that cannot
# reach GitHub and has no local copy it says so loudly and exits 0, since a missing
# database says nothing about the dependencies.
#
# Refresh a local copy:  git -C "$CHAT_ADVISORY_DB" pull
# Make one:              git clone https://github.com/rustsec/advisory-db "$CHAT_ADVISORY_DB"
#
# Advisories that do not apply are listed, each with its reason, in .cargo/audit.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-audit >/dev/null || cargo install cargo-audit --locked

db=""
for candidate in "${CHAT_ADVISORY_DB:-}" "$(pwd)/../shared/advisory-db" /work/shared/advisory-db "$HOME/.cargo/advisory-db"; do
  if [ -n "$candidate" ] && [ -d "$candidate/crates" ]; then db="$candidate"; break; fi
done

if [ -n "$db" ]; then
  newest=$(git -C "$db" log -1 --format=%cs 2>/dev/null || echo "unknown date")
  echo "audit.sh: advisory database at $db (newest advisory commit: $newest)"
  cargo audit --db "$db" --no-fetch --stale
elif timeout 60 cargo audit; then
  :
else
  cat >&2 <<'MSG'
==========================================================================
audit.sh: NO ADVISORY DATABASE. cargo-audit could not fetch it and no local
copy was found ($CHAT_ADVISORY_DB, ../shared/advisory-db, ~/.cargo/advisory-db).
Dependencies were NOT checked for advisories. Clone the database (see the top
of scripts/audit.sh) and run this script again.
==========================================================================
MSG
fi
