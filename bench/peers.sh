#!/usr/bin/env bash
# Side-by-side ingest benchmark: doppel vs InfluxDB 1.x (line protocol over HTTP) and
# doppel vs Mosquitto (MQTT QoS 1), same load generator, same data, same machine, one run.
# Installs the peers from Debian if missing, starts everything on 127.0.0.1, prints a
# table of acked points/s, latency and bytes on disk, with ratios.
#
#   bash bench/peers.sh            # defaults: 6,000,000 points per run (a few seconds each)
#   POINTS=10000000 bash bench/peers.sh
#   ANOMALY=off bash bench/peers.sh   # doppel without anomaly detection (default: on)
#   INFLIGHT=32 bash bench/peers.sh   # QoS 1 messages in flight per MQTT client in the
#                                     # pipelined run (default 16; the first MQTT run uses 1)
set -euo pipefail
cd "$(dirname "$0")/.."

POINTS=${POINTS:-6000000}
TWINS=${TWINS:-100}
SIGNALS=${SIGNALS:-10}
CONC=${CONC:-8}
ANOMALY=${ANOMALY:-on}
INFLIGHT=${INFLIGHT:-16}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

need=()
command -v influxd >/dev/null || need+=(influxdb)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

cargo build --release -p doppel -q
DOPPEL="${CARGO_TARGET_DIR:-target}/release/doppel"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    for _ in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "no answer from $1 within 60 s; logs:" >&2; tail -n 20 "$WORK"/*.log >&2; exit 1
}

# --- doppel
DH=$(free_port); DM=$(free_port)
DOPPEL_ADMIN_TOKEN=bench "$DOPPEL" serve --data-dir "$WORK/doppel" --http-addr 127.0.0.1:$DH \
    --mqtt-addr 127.0.0.1:$DM --anomaly "$ANOMALY" --log warn >"$WORK/doppel.log" 2>&1 &
DOPPEL_PID=$!
wait_http "http://127.0.0.1:$DH/healthz"

# --- InfluxDB 1.x, data on the same disk, WAL fsync on (its default), no auth.
IH=$(free_port); IB=$(free_port)
cat >"$WORK/influxdb.conf" <<CONF
bind-address = "127.0.0.1:$IB"
reporting-disabled = true
[meta]
  dir = "$WORK/influx/meta"
[data]
  dir = "$WORK/influx/data"
  wal-dir = "$WORK/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$IH"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
influxd -config "$WORK/influxdb.conf" >"$WORK/influx.log" 2>&1 &
wait_http "http://127.0.0.1:$IH/ping"
curl -s -XPOST "http://127.0.0.1:$IH/query" --data-urlencode "q=CREATE DATABASE bench" >/dev/null

# --- Mosquitto 2 (QoS 1 acks from memory; no persistence): the MQTT peer.
MP=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MP" >"$WORK/mosquitto.conf"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
sleep 0.5

run() { "$DOPPEL" bench ingest --token bench --twins "$TWINS" --signals "$SIGNALS" \
    --concurrency "$CONC" --points "$POINTS" --duration 600s "$@" 2>/dev/null | tail -1; }

echo "== line protocol over HTTP, batch 500 readings × $SIGNALS signals, $POINTS points"
D_LP=$(run --protocol lp --batch 500 --url "http://127.0.0.1:$DH")
I_LP=$(run --protocol lp --batch 500 --url "http://127.0.0.1:$IH" --no-setup --lp-path "/write?db=bench&precision=ns")
echo "doppel   $D_LP"
echo "influxdb $I_LP"
echo "== MQTT QoS 1, batch 100 readings per message"
D_MQ=$(run --protocol mqtt --batch 100 --url "http://127.0.0.1:$DH" --mqtt 127.0.0.1:$DM --no-setup)
M_MQ=$(run --protocol mqtt --batch 100 --url "http://127.0.0.1:$DH" --mqtt 127.0.0.1:$MP --no-setup)
echo "doppel    $D_MQ"
echo "mosquitto $M_MQ"
echo "== MQTT QoS 1, $INFLIGHT messages in flight per client"
D_MQP=$(run --protocol mqtt --batch 100 --inflight "$INFLIGHT" --url "http://127.0.0.1:$DH" --mqtt 127.0.0.1:$DM --no-setup)
M_MQP=$(run --protocol mqtt --batch 100 --inflight "$INFLIGHT" --url "http://127.0.0.1:$DH" --mqtt 127.0.0.1:$MP --no-setup)
echo "doppel    $D_MQP"
echo "mosquitto $M_MQP"

# Let InfluxDB compact what it can before measuring its disk use. doppel is measured live
# (its WAL may not have reached a checkpoint yet) and after a clean stop (the close
# checkpoint moves the WAL into compressed segments).
sleep 5
D_LIVE=$(du -sb "$WORK/doppel/history" | cut -f1)
I_BYTES=$(du -sb "$WORK/influx/data" "$WORK/influx/wal" | awk '{s+=$1} END {print s}')
kill -TERM "$DOPPEL_PID"; wait "$DOPPEL_PID" 2>/dev/null || true
D_BYTES=$(du -sb "$WORK/doppel/history" | cut -f1)

python3 - "$D_LP" "$I_LP" "$D_MQ" "$M_MQ" "$D_BYTES" "$I_BYTES" "$D_LIVE" "$D_MQP" "$M_MQP" "$INFLIGHT" <<'PY'
import json, sys
d_lp, i_lp, d_mq, m_mq = (json.loads(x) for x in sys.argv[1:5])
d_b, i_b, d_live = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
d_mqp, m_mqp, inflight = json.loads(sys.argv[8]), json.loads(sys.argv[9]), sys.argv[10]
def row(name, a, b, peer):
    r = a["points_per_sec"] / max(b["points_per_sec"], 1)
    print(f"| {name} | {a['points_per_sec']:,.0f} | {b['points_per_sec']:,.0f} ({peer}) | {r:.2f}× | {a['latency_ms']['p50']} / {b['latency_ms']['p50']} ms |")
print("| path | doppel points/s | peer points/s | doppel ÷ peer | p50 latency doppel / peer |")
print("|---|---|---|---|---|")
row("line protocol over HTTP", d_lp, i_lp, "InfluxDB 1.6")
row("MQTT QoS 1", d_mq, m_mq, "Mosquitto 2.0")
row(f"MQTT QoS 1, {inflight} in flight per client", d_mqp, m_mqp, "Mosquitto 2.0")
pts = d_lp["points"] + d_mq["points"] + d_mqp["points"]
print(f"\nbytes on disk: doppel {d_b:,} after a clean stop ({d_b/pts:.1f} B/point over {pts:,} points incl. MQTT run; "
      f"live, WAL included: {d_live:,} = {d_live/pts:.1f} B/point); "
      f"InfluxDB {i_b:,} ({i_b/max(i_lp['points'],1):.1f} B/point over {i_lp['points']:,} points)")
PY
