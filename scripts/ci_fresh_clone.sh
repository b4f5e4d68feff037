#!/usr/bin/env bash
# Run .ci/run the way CI does: on a fresh clone of HEAD (committed files only, no .venv, no data),
# in a temporary directory that is removed afterwards, whatever the outcome (each clone holds a
# ~4 GB virtual environment; leaving them behind fills the disk).
#   scripts/ci_fresh_clone.sh [LOG]       # LOG: also write the output there
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git clone -q "$root" "$tmp/p"
# DESIGN.md and the hooks live beside the project root, as on the CI machine
[[ -e "$root/../shared" ]] && ln -s "$(cd "$root/../shared" && pwd)" "$tmp/shared"
cd "$tmp/p"
if [[ $# -ge 1 ]]; then
    bash .ci/run 2>&1 | tee "$1"
else
    bash .ci/run
fi
