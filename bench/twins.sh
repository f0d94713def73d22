#!/usr/bin/env bash
# Memory and speed with a large fleet: imports N twins of a 10-signal model in one
# POST /api/v1/catalog, feeds every twin readings over line protocol, and reports the
# server's resident memory per twin at each stage, the time to answer a twin's state and a
# fleet query, and the restart time with that catalog and its history.
#
#   bash bench/twins.sh                 # 100,000 twins, 3 readings each
#   TWINS=20000 READINGS=10 bash bench/twins.sh
#   SETTLE=30 bash bench/twins.sh       # seconds to wait before the "settled" figures (15)
set -euo pipefail
cd "$(dirname "$0")/.."

TWINS=${TWINS:-100000}
READINGS=${READINGS:-3}
SETTLE=${SETTLE:-15}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release -p doppel -q
DOPPEL="${DOPPEL_BIN:-${CARGO_TARGET_DIR:-target}/release/doppel}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
H=$(free_port); M=$(free_port)
URL=http://127.0.0.1:$H
AUTH="Authorization: Bearer bench"
start() {
    DOPPEL_ADMIN_TOKEN=bench "$DOPPEL" serve --data-dir "$WORK/data" --http-addr 127.0.0.1:$H \
        --mqtt-addr 127.0.0.1:$M --log warn ${SERVE_FLAGS:-} >>"$WORK/doppel.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 1200); do curl -s -o /dev/null "$URL/healthz" && return 0; sleep 0.05; done
    echo "no answer from $URL within 60 s" >&2; tail -n 20 "$WORK/doppel.log" >&2; exit 1
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

python3 - "$WORK" "$TWINS" "$READINGS" <<'PY'
import json, sys
work, n, readings = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
signals = [{"name": f"s{i}", "unit": "", "kind": "float", "min": 0.0, "max": 100.0,
            "role": "output"} for i in range(10)]
doc = {"models": [{"id": "m10", "name": "10 signals", "version": 1, "description": "",
                   "signals": signals, "properties": [], "relations": []}],
       "twins": [{"id": f"t{i:06}", "model": "m10"} for i in range(n)]}
json.dump(doc, open(f"{work}/catalog.json.in", "w"))
with open(f"{work}/readings.lp", "w") as f:
    for r in range(readings):
        ts = 1767225600 + r
        for i in range(n):
            fields = ",".join(f"s{k}={(i * 7 + k * 3 + r) % 100}.5" for k in range(10))
            f.write(f"m10,twin=t{i:06} {fields} {ts}\n")
PY
split -l 20000 "$WORK/readings.lp" "$WORK/lp."

start
base=$(rss_kb)
t0=$(now)
curl -sf -H "$AUTH" -H 'Content-Type: application/json' --data-binary @"$WORK/catalog.json.in" \
    "$URL/api/v1/catalog" >/dev/null
t1=$(now)
cat_kb=$(rss_kb)
for f in "$WORK"/lp.*; do
    curl -sf -H "$AUTH" --data-binary @"$f" "$URL/api/v1/write?precision=s" >/dev/null
done
t2=$(now)
live_kb=$(rss_kb)
# The allocator gives memory a burst freed back to the OS after a few seconds.
sleep "$SETTLE"
live_settled_kb=$(rss_kb)
q0=$(now)
for i in $(seq 1 50); do
    curl -sf -H "$AUTH" "$URL/api/v1/twins/t$(printf %06d $((RANDOM * 3 % TWINS)))" >/dev/null
done
q1=$(now)
curl -sf -H "$AUTH" "$URL/api/v1/models/m10/signals/s3/fleet?order=desc" -o "$WORK/fleet.json"
q2=$(now)
kill -TERM $PID; wait $PID || true
r0=$(now)
start
r1=$(now)
restart_kb=$(rss_kb)
sleep "$SETTLE"
restart_settled_kb=$(rss_kb)

points=$((TWINS * READINGS * 10))
python3 - <<PY
t, b = $TWINS, $base
print(f"twins {t:,}, readings per twin $READINGS, points {$points:,}")
print(f"RSS at start            {b/1024:8.1f} MiB")
print(f"after import            {$cat_kb/1024:8.1f} MiB  (+{($cat_kb-b)*1024/t:,.0f} B/twin; import took $(secs $t0 $t1) s)")
print(f"after readings          {$live_kb/1024:8.1f} MiB  (+{($live_kb-b)*1024/t:,.0f} B/twin over the start; ingest took $(secs $t1 $t2) s)")
print(f"  settled $SETTLE s          {$live_settled_kb/1024:8.1f} MiB  (+{($live_settled_kb-b)*1024/t:,.0f} B/twin)")
print(f"after restart           {$restart_kb/1024:8.1f} MiB  (+{($restart_kb-b)*1024/t:,.0f} B/twin); restart to serving $(secs $r0 $r1) s")
print(f"  settled $SETTLE s          {$restart_settled_kb/1024:8.1f} MiB  (+{($restart_settled_kb-b)*1024/t:,.0f} B/twin)")
print(f"twin state, 50 requests $(secs $q0 $q1) s in all; fleet query over all twins $(secs $q1 $q2) s")
PY
