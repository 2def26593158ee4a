"""kill -9 at random moments of a process appending, draining and acking (see queue_crash.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tempfile  # noqa: E402

from queue_crash import STRESS, TMP_ROOT, CrashLoop  # noqa: E402


def test_kill_9_at_random_moments_loses_nothing_durable():
    assert os.path.exists(STRESS), f"{STRESS} missing: run swift build"
    iterations = int(os.environ.get("QUEUE_CRASH_ITERATIONS", "300"))
    with tempfile.TemporaryDirectory(prefix="gridlet-queue-crash-", dir=TMP_ROOT) as tmp:
        loop = CrashLoop(os.path.join(tmp, "q"), 64 * 1024, seed=20261124)
        done = loop.run(iterations)
    assert done == iterations
    # The loop really exercised what it claims to.
    assert loop.verified >= iterations * 0.8, loop.verified
    assert loop.durable_checked > 10 * iterations, loop.durable_checked
    assert loop.lost_by_gap > 0, "no ring ever overflowed: drops and gaps were not exercised"
    assert loop.killed_before_open > 0, "no kill landed during open/recovery"
    assert 0 < loop.max_blocks <= 64 * 1024 + 4096
