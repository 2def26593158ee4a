#!/usr/bin/env bash
# The control loop's longest turn across MQTT reconnects, plain TCP then TLS with a client
# certificate (bench/tls_reconnect_turn.py), release build unless GRIDLET_BIN names another.
# usage: bench/tls-reconnect.sh [RECONNECTS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GRIDLET_BIN:-}" ]; then
  swift build -c release --static-swift-stdlib -Xlinker -s >/dev/null
  export GRIDLET_BIN=$PWD/.build/release/gridlet
fi
exec python3 bench/tls_reconnect_turn.py "${1:-5}"
