#!/usr/bin/env bash
# Chaos run (issue "Fault-proof"): 1,000 cmd/events over 10 minutes while the broker is restarted
# every 20-60 s and the agent is killed with -9 every 30-90 s. Prints commands sent, replied,
# applied, lost and setpoint writes over the limit in force. The suite runs a short version
# (tests/e2e/test_chaos.py). Usage: bench/chaos.sh [COMMANDS] [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product gridlet >/dev/null
export GRIDLET_BIN="$PWD/.build/debug/gridlet"
exec python3 bench/chaos.py "${1:-1000}" "${2:-600}" "${3:-1}"
