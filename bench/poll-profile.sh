#!/usr/bin/env bash
# Where the read path's CPU goes, per transaction: `perf record` (cpu-clock, 20 kHz) of
# `gridlet bench-poll --mode MODE` and of the raw libmodbus loop (bench/raw_modbus_poll.c) against
# the same `gridlet simulate --frozen`, pinned as bench/poll-rate.sh pins them, then the samples per
# DSO turned into microseconds of CPU per transaction: gridlet's own code, libc, libmodbus, kernel.
# Run twice, alternating. Needs perf (apt-get install linux-perf) and a release build WITH symbols
# (`swift build -c release --static-swift-stdlib`, no -Xlinker -s), or the gridlet row is one lump.
# usage: bench/poll-profile.sh [PROFILE] [SECONDS] [MODE...]   (default eastron-sdm630 3 chained)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-eastron-sdm630}
SECONDS_RUN=${2:-3}
shift 2 2>/dev/null || shift $#
MODES=("${@:-chained}")
GRIDLET=${GRIDLET_BIN:-.build/release/gridlet}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
WORK=$(mktemp -d)
SIM=""
trap '[ -n "$SIM" ] && kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; rm -rf "$WORK"' EXIT
gcc -O2 -o "$WORK/raw_modbus_poll" bench/raw_modbus_poll.c -lmodbus
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$GRIDLET" simulate "$PROFILE" --port "$PORT" --frozen 2>/dev/null &
SIM=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
BLOCKS=$("$GRIDLET" bench-poll "$PROFILE" --tcp 127.0.0.1:$PORT --print-blocks)
UNIT=$("$GRIDLET" profiles "$PROFILE" | awk '/^unit:/ {print $2; exit}')
echo "profile $PROFILE, blocks $BLOCKS, $SECONDS_RUN s each, binary $GRIDLET"
profile_run() { # NAME COMMAND...
  local name=$1; shift
  local out tx
  out=$(perf record -q -o "$WORK/$name.data" -F 20000 -- "$@" 2>/dev/null)
  tx=$(echo "$out" | sed -n 's/.*transactions=\([0-9]*\).*/\1/p')
  perf report -q -i "$WORK/$name.data" --no-children --sort dso -F sample,dso 2>/dev/null | python3 -c "
import sys
tx, seconds = $tx, $SECONDS_RUN
rows = [l.split() for l in sys.stdin if l.strip()]
us = lambda n: n / 20000 / tx * 1e6
total = sum(int(r[0]) for r in rows)
user = sum(int(r[0]) for r in rows if 'kernel' not in r[1])
by = ' '.join(f'{r[1]}={us(int(r[0])):.2f}' for r in rows if us(int(r[0])) >= 0.05)
print(f'$name: {tx / seconds:.0f} tx/s; CPU per transaction {us(total):.2f} us = user {us(user):.2f} + kernel {us(total - user):.2f}; {by}')"
}
for _ in 1 2; do
  for mode in "${MODES[@]}"; do
    profile_run "$mode" taskset -c 1 "$GRIDLET" bench-poll "$PROFILE" --tcp 127.0.0.1:$PORT --seconds "$SECONDS_RUN" --mode "$mode"
  done
  profile_run raw taskset -c 1 "$WORK/raw_modbus_poll" 127.0.0.1 "$PORT" "${UNIT:-1}" "$SECONDS_RUN" $BLOCKS
done
