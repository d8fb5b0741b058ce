#!/usr/bin/env bash
# Fuzzes each target of fuzz/ for a bounded time from its seed corpus and fails when one
# finds a crash (its input is then under fuzz/artifacts/<target>/; fuzz/README.md says what
# to do with it).
#
#   bash scripts/fuzz.sh               # every target, 60 s each
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh http
#
# Needs a nightly toolchain (cargo-fuzz needs one). Without it, it says so loudly and exits
# 0: the same properties run on stable in every `cargo test`
# (chat-transport-ws/tests/fuzz_props.rs), and a machine may have no way to fetch nightly. Installs cargo-fuzz when it is missing. Builds into
# fuzz/target (FUZZ_TARGET_DIR to change). New inputs found during the run go to a
# temporary directory, so the committed corpus stays the small seed set.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=(frame jwt http); fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: NOT FUZZING: no nightly toolchain, which cargo-fuzz needs" >&2
  echo "fuzz.sh: (rustup toolchain install nightly); only the stable property twins ran," >&2
  echo "fuzz.sh: in cargo test -p chat-transport-ws --test fuzz_props" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

start=$SECONDS
cargo +nightly fuzz build
echo "fuzz.sh: built in $((SECONDS - start)) s"

failed=()
for target in "${targets[@]}"; do
  echo "fuzz.sh: $target for ${seconds} s"
  mkdir -p "$work/$target"
  # The first directory takes new inputs; the seeds are only read.
  if ! cargo +nightly fuzz run "$target" "$work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1; then
    failed+=("$target")
  fi
done

echo "fuzz.sh: done in $((SECONDS - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crash in ${failed[*]}; the inputs are under fuzz/artifacts/" >&2
  exit 1
fi
