#!/usr/bin/env bash
# Poll rate of gridlet's read path (ModbusBus + DeviceReader, via the hidden `gridlet bench-poll`)
# against a raw libmodbus C loop reading the same blocks, on the same `gridlet simulate` in the
# same run. gridlet is measured two ways (docs/benchmarks.md "Poll rate"):
#   chained    each poll's completion asks for the next through the bus's FIFO, so the bus thread
#              goes from poll to poll as when several polls are queued: the read path itself.
#              This is the headline ratio ("ratio gridlet/raw").
#   wait-each  the calling thread asks for a poll and waits for its result before the next: every
#              poll also pays the hand-off to the bus thread and back ("ratio wait-each/raw").
# The SECONDS of each are split into SLICES (default 5) runs, the three rotating their order slice
# by slice, so that a change in the shared machine's load during the run weighs on all alike (two
# 5 s runs one after the other gave ratios from 0.79 to 1.03 on this 2-core machine, with the raw
# loop alone varying 12,300-15,600 tx/s between runs).
# usage: bench/poll-rate.sh [PROFILE] [SECONDS]   (GRIDLET_BIN to pick the binary, SLICES)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-eastron-sdm630}
SECONDS_RUN=${2:-5}
GRIDLET=${GRIDLET_BIN:-.build/release/gridlet}
[ -x "$GRIDLET" ] || GRIDLET=.build/debug/gridlet
# With 2 or more CPUs the simulator runs on CPU 0 and each poller on CPU 1 (PIN=0 turns this
# off): whether a poller and the simulator happened to share a CPU changed a 1 s run of the raw
# loop between ~11,000 and ~27,000 tx/s on this VM (a wake-up on the same CPU is much cheaper).
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  PIN_SIM="taskset -c 0" PIN_CLIENT="taskset -c 1"
else
  PIN_SIM="" PIN_CLIENT=""
fi
WORK=$(mktemp -d)
SIM=""
trap '[ -n "$SIM" ] && kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; rm -rf "$WORK"' EXIT
gcc -O2 -o "$WORK/raw_modbus_poll" bench/raw_modbus_poll.c -lmodbus
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$PIN_SIM "$GRIDLET" simulate "$PROFILE" --port "$PORT" --frozen 2>/dev/null &
SIM=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
# The blocks gridlet reads for this profile (same plan as the agent), e.g. "4:0:18 4:52:2 ...".
BLOCKS=$("$GRIDLET" bench-poll "$PROFILE" --tcp 127.0.0.1:$PORT --print-blocks)
UNIT=$("$GRIDLET" profiles "$PROFILE" | awk '/^unit:/ {print $2; exit}')
echo "profile $PROFILE, blocks $BLOCKS, unit ${UNIT:-1}, $SECONDS_RUN s each, binary $GRIDLET"
SLICES=${SLICES:-5}
PER=$(python3 -c "print($SECONDS_RUN / $SLICES)")
gridlet_slice() { $PIN_CLIENT "$GRIDLET" bench-poll "$PROFILE" --tcp 127.0.0.1:$PORT --seconds "$PER" --mode "$1"; }
raw_slice() { $PIN_CLIENT "$WORK/raw_modbus_poll" 127.0.0.1 "$PORT" "${UNIT:-1}" "$PER" $BLOCKS; }
: > "$WORK/g.txt"; : > "$WORK/w.txt"; : > "$WORK/r.txt"
slice() {
  case $1 in
    g) gridlet_slice chained >> "$WORK/g.txt" ;;
    w) gridlet_slice wait-each >> "$WORK/w.txt" ;;
    r) raw_slice >> "$WORK/r.txt" ;;
  esac
}
ORDERS=(gwr rgw wrg grw wgr rwg)
for i in $(seq "$SLICES"); do
  order=${ORDERS[$(( (i - 1) % 6 ))]}
  for k in 0 1 2; do slice "${order:$k:1}"; done
done
total() { python3 -c "
import re,sys
t=s=0
for line in open(sys.argv[1]):
    t+=int(re.search(r'transactions=(\d+)',line).group(1)); s+=float(re.search(r'seconds=([0-9.]+)',line).group(1))
print(t, round(s,3), round(t/s))" "$1"; }
read -r GN GS GT < <(total "$WORK/g.txt")
read -r WN WS WT < <(total "$WORK/w.txt")
read -r RN RS RT < <(total "$WORK/r.txt")
rates() { sed -n 's/.*tps=\([0-9.]*\).*/\1/p' "$1" | tr '\n' ' '; }
echo "slices (tx/s): gridlet chained $(rates "$WORK/g.txt")/ wait-each $(rates "$WORK/w.txt")/ raw $(rates "$WORK/r.txt")"
echo "gridlet transactions=$GN seconds=$GS tps=$GT (chained)"
echo "gridlet-wait-each transactions=$WN seconds=$WS tps=$WT"
echo "raw transactions=$RN seconds=$RS tps=$RT"
python3 -c "print(f'ratio wait-each/raw = {$WT/$RT:.2f}')"
python3 -c "print(f'ratio gridlet/raw = {$GT/$RT:.2f}')"
