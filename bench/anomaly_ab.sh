#!/usr/bin/env bash
# What anomaly detection costs the ingest path: the same line-protocol load against the same
# release binary with `--anomaly on` and `--anomaly off`, alternated ROUNDS times.
# Usage: bash bench/anomaly_ab.sh   (POINTS=2000000 ROUNDS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
POINTS=${POINTS:-2000000}
ROUNDS=${ROUNDS:-2}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p doppel
B="$TARGET/release/doppel"
for _ in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    D=$(mktemp -d)
    DOPPEL_ADMIN_TOKEN=adm "$B" serve --data-dir "$D" --http-addr 127.0.0.1:28080 \
      --mqtt-addr 127.0.0.1:28830 --anomaly "$mode" --log warn >"$D/out.log" 2>&1 &
    P=$!
    for _ in $(seq 1 100); do curl -s 127.0.0.1:28080/healthz >/dev/null && break; sleep 0.1; done
    printf 'anomaly %-3s ' "$mode"
    "$B" bench ingest --token adm --url http://127.0.0.1:28080 --protocol lp --batch 500 \
      --concurrency 8 --points "$POINTS" 2>/dev/null | tail -1
    kill -INT "$P"
    wait "$P" || true
    rm -rf "$D"
  done
done
