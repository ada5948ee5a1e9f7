#!/usr/bin/env bash
# Fuzz Bulwark's parsers of untrusted input with libFuzzer (cargo-fuzz, nightly toolchain).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 s, every target)
#
# Targets are the functions of crates/fuzz-targets; their corpora are fuzz/corpus/<target>/,
# which `cargo test -p bulwark-fuzz-targets` replays on stable. New inputs libFuzzer finds are
# merged back into the corpus, keeping it small (files < 4 KiB, at most 50 per target) so it
# can be committed. A crash leaves its input in fuzz/artifacts/<target>/: copy it into the
# corpus once fixed, so the replay test keeps covering it. Exit status 1 if any target crashed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
shift || true
ALL_TARGETS=(jwt pem_cert component_yaml credential_ref token_form api_json gate_decode gate_policy)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
MAX_FILE_BYTES=4096
MAX_FILES=50

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd "$ROOT/fuzz"
cargo +nightly fuzz build

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
failed=0
printf '%-16s %14s %8s %8s\n' target executions crashes corpus
for t in "${TARGETS[@]}"; do
    corpus="corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    new=$(mktemp -d)
    log="$LOGS/$t.log"
    status=0
    # New inputs go to a scratch directory first; only the small ones are merged back.
    cargo +nightly fuzz run "$t" "$new" "$corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_FILE_BYTES" \
        -print_final_stats=1 -close_fd_mask=3 >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    crashes=0
    if [ "$status" -ne 0 ]; then
        # libFuzzer stops at the first crash (panic, abort, leak, timeout or OOM).
        crashes=1
        failed=1
    fi
    # Merge what is new (minimised by coverage) while the corpus has room.
    have=$(find "$corpus" -type f | wc -l)
    if [ "$have" -lt "$MAX_FILES" ] && [ -n "$(ls -A "$new")" ]; then
        merged=$(mktemp -d)
        find "$new" -type f -size +$((MAX_FILE_BYTES - 1))c -delete
        cargo +nightly fuzz run "$t" "$merged" "$new" -- -merge=1 -close_fd_mask=3 \
            >>"$log" 2>&1 || true
        for f in $(ls "$merged" | head -n $((MAX_FILES - have))); do
            cp "$merged/$f" "$corpus/"
        done
        rm -rf "$merged"
    fi
    rm -rf "$new"
    printf '%-16s %14s %8s %8s\n' "$t" "${execs:-?}" "$crashes" "$(find "$corpus" -type f | wc -l)"
    if [ "$status" -ne 0 ]; then
        echo "--- $t crashed; the end of its log:" >&2
        tail -n 40 "$log" >&2
        ls "artifacts/$t" >&2 || true
    fi
done
exit "$failed"
