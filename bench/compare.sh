#!/usr/bin/env bash
# Side-by-side benchmark in one run (docs/benchmarks.md): gridlet (release build), a raw
# libmodbus + libmosquitto C loop (bench/raw_loop.c), collectd (modbus + mqtt plugins, Debian
# collectd-core) and modbus2mqtt (PyPI, in a venv) against the same simulated SDM630 meter
# (`gridlet simulate eastron-sdm630`, units 1 and 2) and the same local mosquitto.
# Also the equal-work rows: every tool polls the same two devices every 1 s and every 100 ms for
# EQUAL_SECONDS each (CPU per 1,000 cycles and wake-ups per second at the same rate).
# usage: bench/compare.sh [STEADY_SECONDS] [FAST_SECONDS] [DISPATCH_COUNT] [EQUAL_SECONDS]   (default 60 20 100 30)
# Tools that are missing are installed when possible (apt-get for collectd-core, pip into a venv
# under .build/bench-venv for modbus2mqtt) and otherwise left out with the reason printed.
set -euo pipefail
cd "$(dirname "$0")/.."
steady="${1:-60}" fast="${2:-20}" n="${3:-100}" equal="${4:-30}"
export PATH="$PATH:/usr/sbin"
swift build -c release --static-swift-stdlib -Xlinker -s >&2
mkdir -p .build/bench
gcc -O2 -Wall -o .build/bench/raw_loop bench/raw_loop.c $(pkg-config --cflags --libs libmodbus) -lmosquitto
strip .build/bench/raw_loop
args=(--gridlet .build/release/gridlet --raw .build/bench/raw_loop --steady-s "$steady" --fast-s "$fast" --dispatch-n "$n" --equal-s "$equal"
      --json .build/bench/results.json)
if ! command -v collectd >/dev/null && [ "$(id -u)" = 0 ]; then apt-get install -y collectd-core >&2 || true; fi
if command -v collectd >/dev/null; then args+=(--collectd "$(command -v collectd)"); else echo "collectd: not installed (apt-get install collectd-core); left out" >&2; fi
venv=.build/bench-venv
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q modbus2mqtt 'pymodbus<3.10' >&2 || true; fi
if "$venv/bin/python" -c "import modbus2mqtt" 2>/dev/null; then args+=(--m2m-python "$venv/bin/python"); else echo "modbus2mqtt: pip install failed; left out" >&2; fi
echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores; gridlet $(git rev-parse --short HEAD); $(collectd -h 2>/dev/null | sed -n 's/^collectd \([0-9.]*\).*/collectd \1/p' | head -1); modbus2mqtt $("$venv/bin/pip" show modbus2mqtt 2>/dev/null | sed -n 's/^Version: //p') with pymodbus $("$venv/bin/pip" show pymodbus 2>/dev/null | sed -n 's/^Version: //p')"
python3 bench/compare.py "${args[@]}"
