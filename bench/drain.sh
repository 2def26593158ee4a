#!/usr/bin/env bash
# Unpaced drain rate of gridlet's backlog (replay_rate 1000000: unpaced; DRAIN_RATE=10000 for the former cap; 16 in flight) against a raw
# libmosquitto C publisher (also 16 in flight, same payload size) to the same local broker.
# The backlog is written into the agent's queue beforehand by gridlet-queue-stress --bench fill.
# usage: bench/drain.sh [RECORDS]   (default 100000)
# DRAIN_WRAP="strace -c -f -o /tmp/s.txt" (or "perf record -e cpu-clock -g -o /tmp/p.data") runs gridlet under it.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
source bench/lib.sh
# GRIDLET_BIN=/path/to/gridlet: drain with another build (A/B in one sitting).
bin=${GRIDLET_BIN:-$bin}
stress=$PWD/.build/release/gridlet-queue-stress
gcc -O2 -o "$work/raw_publish" bench/raw_publish.c -lmosquitto
"$stress" --dir "$work/state/queue" --max-bytes $((64 << 20)) --run 0 --bench fill --count "$n" >&2
start_site
write_config "queue: { max_bytes: 64MiB, replay_rate: ${DRAIN_RATE:-1000000} }"
# Parsed in bash, not by a python per sample: the sampler must not take a core from the drain.
q() {
  local j; j=$("$bin" status --json --socket "$work/g.sock" 2>/dev/null) || { echo "-1 0"; return; }
  [[ $j =~ \"queue\":\{\"records\":([0-9]+) ]] && left=${BASH_REMATCH[1]} || left=-1
  [[ $j =~ \"acked\":([0-9]+) ]] && acked=${BASH_REMATCH[1]} || acked=0
  echo "$left $acked"
}
now() { date +%s.%N; }
t0=$(now)
${DRAIN_WRAP:-} "$bin" run --config "$work/g.yaml" --log-level warning 2>/dev/null & gp=$!; pids+=($gp)
ta=""; a0=0
while :; do
  read -r left acked < <(q)
  [ -z "$ta" ] && [ "$acked" -gt 0 ] && { ta=$(now); a0=$acked; }
  [ "$left" -ge 0 ] && [ "$left" -le 2 ] && [ "$acked" -ge "$n" ] && break
  sleep 0.05
done
t1=$(now)
python3 -c "n=$n; dt=$t1-$t0; print(f'gridlet_drain_msgs_per_s={n/dt:.0f} ({n} records from process start to all acknowledged: {dt:.2f} s, incl. start and connect)')"
# The drain itself, as the raw publisher is timed: from the first status sample that shows
# acknowledged records to the last (samples every 50 ms, the snapshot is at most 100 ms old).
python3 -c "n=$n; a0=$a0; dt=$t1-$ta; print(f'gridlet_steady_drain_msgs_per_s={(n-a0)/dt:.0f} ({n-a0} records in {dt:.2f} s after the first acknowledgements)')"
# Under a wrapper, stop gridlet itself at once so the wrapper writes its report on the drain alone.
if [ -n "${DRAIN_WRAP:-}" ]; then for c in $(pgrep -P "$gp"); do kill "$c"; done; wait "$gp" || true; fi
size=$(python3 -c "print(len('{\"seq\":1,\"historical\":true,\"ts\":\"2027-06-01T17:00:00.000Z\",\"devices\":{\"meter\":{\"power_w\":4318.25,\"import_wh\":12345500,\"export_wh\":67250,\"voltage_v\":[229.5,230.25,231],\"current_a\":[5.5,6.25,7],\"frequency_hz\":50.0625,\"ok\":true}},\"control\":{\"limit_w\":11040,\"applied_a\":16,\"source\":\"default\"}}'))")
"$work/raw_publish" "$mq" "$n" "$size"
