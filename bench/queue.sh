#!/usr/bin/env bash
# Queue benchmark, one run: append rate with sync batch and always, recovery (open) time of a
# full 64 MiB queue, unpaced drain rate against a raw libmosquitto publisher. Release build of gridlet-queue-stress. Usage: bench/queue.sh [DIR]
# (DIR: a directory on the filesystem to measure; default a temp dir under /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product gridlet-queue-stress >/dev/null
BIN=.build/release/gridlet-queue-stress
BASE=$(mktemp -d "${1:-/var/tmp}/gridlet-queue-bench.XXXXXX")
trap 'rm -rf "$BASE"' EXIT
echo "filesystem: $(df -T "$BASE" | awk 'NR==2 {print $2" on "$1}'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" --bench append --dir "$BASE/batch" --max-bytes $((64 << 20)) --sync batch --run 1 --count 200000
"$BIN" --bench append --dir "$BASE/always" --max-bytes $((64 << 20)) --sync always --run 1 --count 2000
"$BIN" --bench recovery --dir "$BASE/full" --max-bytes $((64 << 20)) --sync none --run 1
# Unpaced drain of a 20,000-record backlog by the agent vs a raw libmosquitto publisher, same broker.
bench/drain.sh 20000
