#!/usr/bin/env bash
# Unpaced drain rate of gridlet's backlog (replay_rate 10000, 16 in flight) against a raw
# libmosquitto C publisher (also 16 in flight, same payload size) to the same local broker.
# The backlog is written into the agent's queue beforehand by gridlet-queue-stress --bench fill.
# usage: bench/drain.sh [RECORDS]   (default 20000)
# DRAIN_WRAP="strace -c -f -o /tmp/s.txt" (or "perf record -e cpu-clock -g -o /tmp/p.data") runs gridlet under it.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
source bench/lib.sh
stress=$PWD/.build/release/gridlet-queue-stress
gcc -O2 -o "$work/raw_publish" bench/raw_publish.c -lmosquitto
"$stress" --dir "$work/state/queue" --max-bytes $((64 << 20)) --run 0 --bench fill --count "$n" >&2
start_site
write_config "queue: { max_bytes: 64MiB, replay_rate: ${DRAIN_RATE:-10000} }"
q() { "$bin" status --json --socket "$work/g.sock" 2>/dev/null | python3 -c "import json,sys; d=json.loads(sys.stdin.read() or '{}'); print(d.get('queue',{}).get('records',-1), d.get('mqtt',{}).get('acked',0))" 2>/dev/null || echo "-1 0"; }
t0=$(date +%s.%N)
${DRAIN_WRAP:-} "$bin" run --config "$work/g.yaml" --log-level warning 2>/dev/null & gp=$!; pids+=($gp)
while :; do read -r left acked < <(q); [ "$left" -ge 0 ] && [ "$left" -le 2 ] && [ "$acked" -ge "$n" ] && break; sleep 0.05; done
t1=$(date +%s.%N)
python3 -c "n=$n; dt=$t1-$t0; print(f'gridlet_drain_msgs_per_s={n/dt:.0f} ({n} records from process start to all acknowledged: {dt:.2f} s, incl. start and connect)')"
# Under a wrapper, stop gridlet itself at once so the wrapper writes its report on the drain alone.
if [ -n "${DRAIN_WRAP:-}" ]; then for c in $(pgrep -P "$gp"); do kill "$c"; done; wait "$gp" || true; fi
size=$(python3 -c "print(len('{\"seq\":1,\"historical\":true,\"ts\":\"2027-06-01T17:00:00.000Z\",\"devices\":{\"meter\":{\"power_w\":4318.25,\"import_wh\":12345500,\"export_wh\":67250,\"voltage_v\":[229.5,230.25,231],\"current_a\":[5.5,6.25,7],\"frequency_hz\":50.0625,\"ok\":true}},\"control\":{\"limit_w\":11040,\"applied_a\":16,\"source\":\"default\"}}'))")
"$work/raw_publish" "$mq" "$n" "$size"
