#!/usr/bin/env bash
# Measures gridlet's steady memory (VmHWM, VmRSS) and CPU time while it polls two devices
# (a simulated SDM630 meter and Vestel EVC04 charger) at 1 s and publishes telemetry every 1 s
# to a local mosquitto, plus the stripped release binary's size.
# Ends with the smaps breakdown of the resident set (bench/smaps.py).
# usage: bench/steady-rss.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
source bench/lib.sh
start_site
write_config
"$bin" run --config "$work/g.yaml" --log-level warning & gp=$!; pids+=($gp)
sleep "$secs"
hwm=$(awk '/VmHWM/{print $2}' /proc/$gp/status); rss=$(awk '/VmRSS/{print $2}' /proc/$gp/status)
read -r ut st < <(awk '{print $14, $15}' /proc/$gp/stat)
tck=$(getconf CLK_TCK)
size=$(stat -c %s "$bin")
echo "binary_bytes=$size"
echo "vmhwm_kib=$hwm vmrss_kib=$rss after ${secs}s"
threads=$(ls /proc/$gp/task | wc -l)
echo "cpu_s=$(python3 -c "print(round(($ut+$st)/$tck, 2))") over ${secs}s (2 devices at 1 s, telemetry 1 s); threads=$threads"
echo "where the resident memory is (bench/smaps.py):"
python3 bench/smaps.py "$gp" 16
