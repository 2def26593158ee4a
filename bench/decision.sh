#!/bin/sh
# Median cost of one control decision (engine advance + decide, charger governor, ledger feed).
# Usage: bench/decision.sh [decisions] [events]   (defaults 100000 decisions, 20 stored events)
set -eu
cd "$(dirname "$0")/.."
swift build -c release --product gridlet-bench-decision >/dev/null
exec "$(swift build -c release --show-bin-path)/gridlet-bench-decision" "${1:-100000}" "${2:-20}"
