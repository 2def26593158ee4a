#!/usr/bin/env bash
# kill -9 crash loop on the on-disk queue, 10,000 iterations by default (CI runs 300 in
# tests/e2e/test_queue_crash.py). Usage: bench/queue-crash.sh [ITERATIONS] [SEED]
# QUEUE_CRASH_DIR=/some/dir runs it on another filesystem (default /dev/shm).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product gridlet-queue-stress >/dev/null
exec python3 tests/e2e/queue_crash.py --iterations "${1:-10000}" --seed "${2:-1}"
