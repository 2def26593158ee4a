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


def test_power_cut_at_random_points_loses_nothing_synced():
    """The same loop with `always` and `batch` only, and after each kill a power cut emulated
    from a journal of the process's writes (powercut_shim.c, LD_PRELOAD): everything after a
    point of the journal is undone, and of the writes since the last completed fdatasync
    before it all, none or a random half of their 512-byte sectors. Every record reported
    durable after a sync must survive intact or be covered by a gap record. This found two
    ordering bugs a kill -9 cannot show (a gap record and the checkpoint that moves the head
    past what it reports reaching the disk in either order; a sync taken between a drop and
    its checkpoint letting the tail overwrite records the synced checkpoint still holds)."""
    assert os.path.exists(STRESS), f"{STRESS} missing: run swift build"
    iterations = int(os.environ.get("QUEUE_POWERCUT_ITERATIONS", "600"))
    with tempfile.TemporaryDirectory(prefix="gridlet-queue-powercut-", dir=TMP_ROOT) as tmp:
        loop = CrashLoop(os.path.join(tmp, "q"), 64 * 1024, seed=20261125, power_cut=True)
        done = loop.run(iterations)
    assert done == iterations
    assert loop.verified >= iterations * 0.8, loop.verified
    assert loop.durable_checked > 10 * iterations, loop.durable_checked
    assert loop.lost_by_gap > 0, "no ring ever overflowed"
    assert all(n > iterations / 10 for n in loop.power_cuts.values()), loop.power_cuts
    assert loop.pending_writes_undone > iterations, "hardly any unsynced write was undone"
