#!/usr/bin/env bash
# The control loop's longest turn while commands arrive and telemetry is queued (issue
# "Fault-proof" item 10: nothing slow on the loop). Usage: bench/loop-turn.sh [COMMANDS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product gridlet >/dev/null
export GRIDLET_BIN="$PWD/.build/debug/gridlet"
exec python3 bench/loop_turn.py "${1:-300}" "${2:-20}"
