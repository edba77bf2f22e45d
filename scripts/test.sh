#!/usr/bin/env bash
# Runs every test of the workspace. Brings up the servers the store tests talk to
# (scripts/services/*.sh: each installs with apt-get if missing, starts, waits), then
# runs the tests. A server that cannot be brought up fails the run: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
for service in scripts/services/*.sh; do
  bash "$service"
done
cargo test --workspace --all-features --locked "$@"
