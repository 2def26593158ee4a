"""bench/chaos.sh: the long chaos run on the same site the e2e tests build."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from chaos import run  # noqa: E402
from conftest import make_site  # noqa: E402

commands, seconds, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
with tempfile.TemporaryDirectory(prefix="gridlet-chaos-") as d, make_site(d) as site:
    stats, missing, over = run(site, commands=commands, seconds=seconds, broker_every=(20.0, 60.0),
                               kill_every=(30.0, 90.0), seed=seed, progress=lambda m: print(m, flush=True))
print(f"commands sent {stats['sent']}, replied {stats['replied']} (ok {stats['replied_ok']}), "
      f"resent {stats['resent']}, broker restarts {stats['broker_restarts']}, agent kills {stats['agent_kills']}")
print(f"acknowledged and still open at the final restart: {stats['checked_open']}, applied {stats['applied']}, "
      f"lost {stats['lost']} {missing[:10]}")
print(f"setpoint writes checked {stats['setpoint_writes_checked']}, over the limit in force {stats['writes_over_limit']}")
sys.exit(1 if missing or over or stats["replied_ok"] != stats["sent"] else 0)
