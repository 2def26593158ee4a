"""Short chaos run in the suite (the long one: bench/chaos.sh): commands while the broker is
restarted and the agent is killed with -9; no acknowledged command is lost, the charger never
exceeds the limit in force."""
from chaos import run


def test_chaos_short(site):
    stats, missing, over = run(site, commands=50, seconds=40.0, broker_every=(8.0, 14.0), kill_every=(10.0, 16.0),
                               seed=7, progress=print)
    print("chaos:", stats)
    assert stats["broker_restarts"] >= 2 and stats["agent_kills"] >= 2, stats
    assert stats["replied_ok"] == stats["sent"], stats
    assert not missing, f"acknowledged but not kept after the restart: {missing}"
    assert not over, f"setpoint above {6} A while every event limits to it: {over[:5]}"
    assert stats["setpoint_writes_checked"] > 0, stats
