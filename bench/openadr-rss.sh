#!/usr/bin/env bash
# The OpenADR VEN's footprint (issue 12): steady memory (VmHWM, VmRSS) and CPU time of
# `gridlet run` on the steady-rss.sh site (meter and charger polled at 1 s, telemetry 1 s, local
# mosquitto), first without `openadr:`, then with a VEN polling a fake VTN
# (tests/e2e/fake_vtn.py, OAuth2 token, one programme, one event) every 60 s. Same release
# binary, same duration, one after the other.
# usage: bench/openadr-rss.sh [SECONDS]   (default 120, at least 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-120}"
source bench/lib.sh
start_site
vp=$(port)
python3 - "$vp" <<'PY' & pids+=($!)
import sys, time
sys.path.insert(0, "tests/e2e")
from fake_vtn import FakeVTN, limit_event, program
v = FakeVTN()
v.port = int(sys.argv[1])
v.start()
v.set(programs=[program("prog-vpp", "vpp")], events=[limit_event("evt-far", "prog-vpp", time.time() + 86400, 3600, [4.14])])
time.sleep(10**9)
PY
echo s3cret > "$work/vtn.secret"
sleep 1

measure() {   # measure LABEL: runs the agent on $work/g.yaml for $secs and prints its figures
  rm -rf "$work/state"
  "$bin" run --config "$work/g.yaml" --log-level warning & local gp=$!
  # CPU also after a 30 s warm-up (start-up, and for the VEN loading libcurl and initialising
  # OpenSSL, are paid once; the steady part is what a site pays every hour).
  sleep 30
  local ut0 st0
  read -r ut0 st0 < <(awk '{print $14, $15}' /proc/$gp/stat)
  sleep "$((secs - 30))"
  local hwm rss ut st
  hwm=$(awk '/VmHWM/{print $2}' /proc/$gp/status); rss=$(awk '/VmRSS/{print $2}' /proc/$gp/status)
  read -r ut st < <(awk '{print $14, $15}' /proc/$gp/stat)
  kill "$gp"; wait "$gp" 2>/dev/null || true
  local tck; tck=$(getconf CLK_TCK)
  echo "$1: vmhwm_kib=$hwm vmrss_kib=$rss cpu_s=$(python3 -c "print(round(($ut+$st)/$tck, 2))") over ${secs}s," \
       "cpu_s=$(python3 -c "print(round(($ut+$st-$ut0-$st0)/$tck, 2))") from 30 s on"
}

write_config
measure "without openadr"
write_config "openadr:" "  vtn_url: http://127.0.0.1:$vp" "  auth: { client_id: ven-client, client_secret_file: $work/vtn.secret }" \
             "  programs: [vpp]" "  poll_interval: 60s"
measure "with openadr (60 s polls)"
