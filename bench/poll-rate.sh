#!/usr/bin/env bash
# Poll rate of gridlet's read path (ModbusBus + DeviceReader, via the hidden `gridlet bench-poll`)
# against a raw libmodbus C loop reading the same blocks, on the same `gridlet simulate` in the
# same run. Prints both rates and the ratio.
# usage: bench/poll-rate.sh [PROFILE] [SECONDS]   (GRIDLET_BIN to pick the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-eastron-sdm630}
SECONDS_RUN=${2:-5}
GRIDLET=${GRIDLET_BIN:-.build/release/gridlet}
[ -x "$GRIDLET" ] || GRIDLET=.build/debug/gridlet
WORK=$(mktemp -d)
SIM=""
trap '[ -n "$SIM" ] && kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; rm -rf "$WORK"' EXIT
gcc -O2 -o "$WORK/raw_modbus_poll" bench/raw_modbus_poll.c -lmodbus
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$GRIDLET" simulate "$PROFILE" --port "$PORT" --frozen 2>/dev/null &
SIM=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
# The blocks gridlet reads for this profile (same plan as the agent), e.g. "4:0:18 4:52:2 ...".
BLOCKS=$("$GRIDLET" bench-poll "$PROFILE" --tcp 127.0.0.1:$PORT --print-blocks)
UNIT=$("$GRIDLET" profiles "$PROFILE" | awk '/^unit:/ {print $2; exit}')
echo "profile $PROFILE, blocks $BLOCKS, unit ${UNIT:-1}, $SECONDS_RUN s each, binary $GRIDLET"
G=$("$GRIDLET" bench-poll "$PROFILE" --tcp 127.0.0.1:$PORT --seconds "$SECONDS_RUN")
R=$("$WORK/raw_modbus_poll" 127.0.0.1 "$PORT" "${UNIT:-1}" "$SECONDS_RUN" $BLOCKS)
echo "$G"
echo "$R"
GT=$(sed -n 's/.*tps=\([0-9.]*\).*/\1/p' <<<"$G")
RT=$(sed -n 's/.*tps=\([0-9.]*\).*/\1/p' <<<"$R")
python3 -c "print(f'ratio gridlet/raw = {$GT/$RT:.2f}')"
