# Shared setup for the bench scripts that run `gridlet run` against the built-in simulators of
# an SDM630 meter and a Vestel EVC04 charger and a local mosquitto. Source it from bench/*.sh
# (after `cd` to the repository root). Provides: $bin, $work, pids+=() cleanup, port,
# start_site (sets $mq $mp $cp and starts the broker and both simulators), write_config EXTRA.
export PATH="$PATH:/usr/sbin"
# GRIDLET_BIN=PATH measures that binary instead of building .build/release/gridlet.
if [ -n "${GRIDLET_BIN:-}" ]; then
  bin=$(realpath "$GRIDLET_BIN")
else
  swift build -c release --static-swift-stdlib -Xlinker -s >/dev/null
  bin=$PWD/.build/release/gridlet
fi
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_site() {
  mq=$(port); mp=$(port); cp=$(port)
  mosquitto -p "$mq" >/dev/null 2>&1 & pids+=($!)
  "$bin" simulate eastron-sdm630 --port "$mp" 2>/dev/null & pids+=($!)
  "$bin" simulate vestel-evc04 --port "$cp" --voltage 230 2>/dev/null & pids+=($!)
  sleep 1
}

# write_config [EXTRA_YAML_LINE...]: $work/g.yaml polling both devices at 1 s, telemetry 1 s.
write_config() {
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
  for line in "$@"; do echo "$line" >> "$work/g.yaml"; done
}
