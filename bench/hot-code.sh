#!/usr/bin/env bash
# Regenerates linker/hot-code.order: the functions `gridlet run` executes, in the order the
# release link (Package.swift, lld --symbol-ordering-file) lays them out at the start of the text:
# first those of the steady state (2 devices polled at 1 s, telemetry 1 s, local mosquitto, as
# bench/steady-rss.sh), most executed first, then those of start-up, then those of shutdown.
# Counted with valgrind's callgrind on a release build with symbols (a scratch build under
# .build/hot-code; valgrind 3.19 cannot read its DWARF 5, so the debug info is stripped first).
# Names that no longer exist are ignored by the linker, so a stale file only costs memory: rerun
# this after larger changes to the agent's loop, and check with bench/steady-rss.sh.
# usage: bench/hot-code.sh [STARTUP_SECONDS] [STEADY_SECONDS]   (default 20 40; under valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
t1=${1:-20} t2=${2:-40}
export PATH="$PATH:/usr/sbin"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
scratch=.build/hot-code
swift build -c release --static-swift-stdlib --product gridlet --scratch-path "$scratch" >&2
strip --strip-debug -o "$scratch/gridlet-nodebug" "$scratch/release/gridlet"
# The site of bench/steady-rss.sh (bench/lib.sh), with this binary.
GRIDLET_BIN="$scratch/gridlet-nodebug"
source bench/lib.sh
start_site
write_config
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.%p" "$bin" run --config "$work/g.yaml" --log-level warning 2>"$work/vg.log" & vp=$!; pids+=($vp)
sleep "$t1"; callgrind_control -d "$vp" >/dev/null   # dump 1: start-up
sleep "$t2"; callgrind_control -d "$vp" >/dev/null   # dump 2: steady state
kill -TERM "$vp"; wait "$vp" || true                 # the final dump: shutdown
python3 bench/hot_code.py "$bin" "$work/cg.$vp.2" "$work/cg.$vp.1" "$work/cg.$vp" > linker/hot-code.order
echo "linker/hot-code.order: $(wc -l < linker/hot-code.order) functions" >&2
