#!/usr/bin/env bash
# Unpaced drain rate of gridlet's backlog (replay_rate 10000, 16 in flight) against a raw
# libmosquitto C publisher (also 16 in flight, same payload size) to the same local broker.
# usage: bench/drain.sh [RECORDS]   (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-5000}"
export PATH="$PATH:/usr/sbin"
swift build -c release --static-swift-stdlib -Xlinker -s >/dev/null
bin=$PWD/.build/release/gridlet
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mq=$(port); mp=$(port); cp=$(port)
gcc -O2 -o "$work/raw_publish" bench/raw_publish.c -lmosquitto
"$bin" simulate eastron-sdm630 --port "$mp" 2>/dev/null & pids+=($!)
"$bin" simulate vestel-evc04 --port "$cp" --voltage 230 2>/dev/null & pids+=($!)
cat > "$work/g.yaml" <<YAML
site: { id: bench, state_dir: $work/state, socket: $work/g.sock }
buses:
  - { name: m, kind: tcp, host: 127.0.0.1, port: $mp }
  - { name: c, kind: tcp, host: 127.0.0.1, port: $cp }
devices:
  - { name: meter, bus: m, unit: 1, profile: eastron-sdm630, role: site-meter, poll: 100ms }
  - { name: evse, bus: c, unit: 255, profile: vestel-evc04, role: charger, max_current: 16, poll: 100ms }
mqtt: { host: 127.0.0.1, port: $mq }
telemetry: { interval: 100ms }
queue: { max_bytes: 64MiB, replay_rate: 10000 }
YAML
status() { "$bin" status --json --socket "$work/g.sock" 2>/dev/null || echo '{}'; }
field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read() or '{}'); print(d.get('queue',{}).get('$1',0))"; }
# Build a backlog with no broker: telemetry every 100 ms; wait until N records are queued.
"$bin" run --config "$work/g.yaml" --log-level warning 2>/dev/null & gp=$!; pids+=($gp)
echo "building a backlog of $n records (no broker)..." >&2
while [ "$(status | field records)" -lt "$n" ]; do sleep 1; done
size=$(status | python3 -c "import json,sys; q=json.load(sys.stdin)['queue']; print(q['bytes']//max(1,q['records']))")
mosquitto -p "$mq" >/dev/null 2>&1 & pids+=($!)
conn() { status | python3 -c "import json,sys; print(json.loads(sys.stdin.read() or '{}').get('mqtt',{}).get('connected',False))"; }
while [ "$(conn)" != "True" ]; do sleep 0.02; done   # time the drain, not the reconnect backoff
acked() { status | python3 -c "import json,sys; print(json.loads(sys.stdin.read() or '{}').get('mqtt',{}).get('acked',0))"; }
# Sample the acknowledged count twice while the backlog is still draining.
a0=$(acked); t0=$(date +%s.%N)
sleep 0.5
a1=$(acked); t1=$(date +%s.%N)
left=$(status | field records)
python3 -c "da=$a1-$a0; dt=$t1-$t0; print(f'gridlet_drain_msgs_per_s={da/dt:.0f} ({da} PUBACKs in {dt:.2f}s, backlog {$n} at connect, {$left} left after; ~{$size} bytes/record on disk)')"
[ "$left" -gt 0 ] || echo "warning: the backlog drained within the window; use a larger RECORDS" >&2
"$work/raw_publish" "$mq" "$n" "$size"
