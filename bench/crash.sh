#!/usr/bin/env bash
# Random kill -9 rounds against a release build of `doppel serve`: writers record every
# acknowledged reading, the server is SIGKILLed at a seeded random moment (checkpoints every
# 32 KiB of WAL, 128-point chunks), restarted on the same data directory, and the whole
# history is checked. Prints one line per round and a summary; fails if anything acked was
# lost, duplicated or corrupt, or a restart did not open.
#
#   bash bench/crash.sh                    # 100 rounds, seed from the clock (printed)
#   ROUNDS=20 SEED=42 bash bench/crash.sh  # replay a seed
set -euo pipefail
cd "$(dirname "$0")/.."

export DOPPEL_CRASH_ROUNDS=${ROUNDS:-100}
if [ -n "${SEED:-}" ]; then
  export DOPPEL_CRASH_SEED=$SEED
fi
exec cargo test --release -p doppel --test crash_rounds -- --ignored --exact crash_rounds_many --nocapture
