#!/usr/bin/env bash
# Measures gridlet's steady memory (VmHWM, VmRSS) and CPU time while it polls two devices
# (a simulated SDM630 meter and Vestel EVC04 charger) at 1 s and publishes telemetry every 1 s
# to a local mosquitto, plus the stripped release binary's size.
# usage: bench/steady-rss.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
export PATH="$PATH:/usr/sbin"
swift build -c release --static-swift-stdlib -Xlinker -s >/dev/null
bin=.build/release/gridlet
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mq=$(port); mp=$(port); cp=$(port)
mosquitto -p "$mq" >/dev/null 2>&1 & pids+=($!)
"$bin" simulate eastron-sdm630 --port "$mp" 2>/dev/null & pids+=($!)
"$bin" simulate vestel-evc04 --port "$cp" --voltage 230 2>/dev/null & pids+=($!)
sleep 1
cat > "$work/g.yaml" <<YAML
site: { id: bench, state_dir: $work/state, socket: $work/g.sock }
buses:
  - { name: m, kind: tcp, host: 127.0.0.1, port: $mp }
  - { name: c, kind: tcp, host: 127.0.0.1, port: $cp }
devices:
  - { name: meter, bus: m, unit: 1, profile: eastron-sdm630, role: site-meter, poll: 1s }
  - { name: evse, bus: c, unit: 255, profile: vestel-evc04, role: charger, max_current: 16, poll: 1s }
mqtt: { host: 127.0.0.1, port: $mq }
telemetry: { interval: 1s }
YAML
"$bin" run --config "$work/g.yaml" --log-level warning & gp=$!; pids+=($gp)
sleep "$secs"
hwm=$(awk '/VmHWM/{print $2}' /proc/$gp/status); rss=$(awk '/VmRSS/{print $2}' /proc/$gp/status)
read -r ut st < <(awk '{print $14, $15}' /proc/$gp/stat)
tck=$(getconf CLK_TCK)
size=$(stat -c %s "$bin")
echo "binary_bytes=$size"
echo "vmhwm_kib=$hwm vmrss_kib=$rss after ${secs}s"
echo "cpu_s=$(python3 -c "print(round(($ut+$st)/$tck, 2))") over ${secs}s (2 devices at 1 s, telemetry 1 s)"
