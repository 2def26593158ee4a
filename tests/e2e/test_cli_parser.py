"""gridlet's own command-line parser (GridletCLI, which replaced swift-argument-parser): help and
version on standard output with exit 0, usage errors on standard error with exit 2, in the format
the CLI had before (scripts/cli-compare compares a longer list against an older binary)."""
import subprocess

from conftest import GRIDLET

RUN_USAGE = ("Usage: gridlet run [--config <config>] [--demo] [--mqtt-port <mqtt-port>] [--state-dir <state-dir>] "
             "[--log-level <log-level>] [--board <board>]\n  See 'gridlet run --help' for more information.\n")


def gridlet(*args):
    return subprocess.run([GRIDLET, *args], capture_output=True, text=True, timeout=20, env={"COLUMNS": "80"})


def test_help_and_version():
    top = gridlet("--help")
    assert top.returncode == 0 and top.stderr == ""
    assert top.stdout.startswith("OVERVIEW: Edge agent for EV chargers and meters")
    assert "\nSUBCOMMANDS:\n  run                     Run the agent (the daemon; systemd Type=notify).\n" in top.stdout
    assert top.stdout.endswith("\n  See 'gridlet help <subcommand>' for detailed help.\n")
    assert "bench-poll" not in top.stdout  # hidden
    assert gridlet().stdout == top.stdout and gridlet("-h").stdout == top.stdout and gridlet("help").stdout == top.stdout
    run = gridlet("run", "--help")
    assert run.returncode == 0
    assert "  --mqtt-port <mqtt-port> With --demo: the broker's port. (default: 1883)\n" in run.stdout
    assert gridlet("help", "run").stdout == run.stdout and gridlet("run", "--bogus", "-h").stdout == run.stdout
    assert gridlet("help", "modbus", "write").stdout == gridlet("modbus", "write", "--help").stdout
    assert "USAGE: gridlet modbus write [<options>] --address <address> <values> ...\n" in gridlet("modbus", "write", "-h").stdout
    group = gridlet("queue")
    assert group.returncode == 0 and "  See 'gridlet help queue <subcommand>' for detailed help.\n" in group.stdout
    for args in (["--version"], ["run", "--version"], ["help", "--version"]):
        v = gridlet(*args)
        assert (v.returncode, v.stdout.strip()) == (0, "0.1.0"), args
    assert gridlet("bench-poll", "--help").stdout.startswith("OVERVIEW: Measure the poll rate (benchmark).")


def test_usage_errors_exit_2():
    cases = [
        (["run", "--bogus"], "Error: Unknown option '--bogus'. Did you mean '--board'?\n" + RUN_USAGE),
        (["run", "-x"], "Error: Unknown option '-x'\n" + RUN_USAGE),
        (["run", "--mqtt-port", "abc"], "Error: The value 'abc' is invalid for '--mqtt-port <mqtt-port>'\n"
         "Help:  --mqtt-port <mqtt-port>  With --demo: the broker's port.\n" + RUN_USAGE),
        (["run", "--config"], "Error: Missing value for '--config <config>'\nHelp:  --config <config>  Configuration file.\n" + RUN_USAGE),
        (["run", "--config", "--demo"], "Error: Missing value for '--config <config>'\n"
         "Help:  --config <config>  Configuration file.\n" + RUN_USAGE),
        (["run", "--demo=1"], "Error: The option '--demo' does not take any value, but '1' was specified.\n" + RUN_USAGE),
        (["run", "extra"], "Error: Unexpected argument 'extra'\n" + RUN_USAGE),
        (["frob"], "Error: Unexpected argument 'frob'\nUsage: gridlet <subcommand>\n  See 'gridlet --help' for more information.\n"),
        (["read"], "Error: Missing expected argument '<device>'\nHelp:  <device>  Device name from the configuration.\n"
         "Usage: gridlet read <device> [<points> ...] [--config <config>] [--json]\n  See 'gridlet read --help' for more information.\n"),
        (["modbus", "write", "--address", "1"], "Error: Missing expected argument '<values> ...'\n"
         "Help:  <values>  Values, encoded by --type and --word-order.\n"
         "Usage: gridlet modbus write [<options>] --address <address> <values> ...\n"
         "  See 'gridlet modbus write --help' for more information.\n"),
        (["schedule", "--count", "1.5"], "Error: The value '1.5' is invalid for '--count <count>'\nHelp:  --count <count>  How many transitions.\n"
         "Usage: gridlet schedule [--next] [--count <count>] [--json] [--config <config>] [--socket <socket>]\n"
         "  See 'gridlet schedule --help' for more information.\n"),
        (["help", "run", "--bogus"], "Error: Unknown option '--bogus'\nUsage: gridlet help [<subcommands> ...]\n"),
        (["profiles", "a", "b", "c"], "Error: 2 unexpected arguments: 'b', 'c'\nUsage: gridlet profiles [<name>] [--json]\n"
         "  See 'gridlet profiles --help' for more information.\n"),
    ]
    for args, stderr in cases:
        r = gridlet(*args)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", stderr), args
    # A value error wins over a help request; a missing argument does not.
    assert gridlet("run", "--mqtt-port", "abc", "--help").returncode == 2
    assert gridlet("read", "--help").returncode == 0


def test_parsed_values_reach_the_command(tmp_path):
    good = tmp_path / "g.yaml"
    good.write_text("site: { id: s }\nbuses:\n  - { name: m, kind: tcp, host: 127.0.0.1, port: 1502 }\n"
                    "devices:\n  - { name: meter, bus: m, unit: 1, profile: eastron-sdm630, role: site-meter }\n"
                    "mqtt: { host: 127.0.0.1 }\n")
    r = gridlet("config", "check", str(good), "--json")
    assert r.returncode == 0 and '"ok":true' in r.stdout.replace(" ", ""), r.stdout + r.stderr
    # A repeated option: the last one wins.
    r = gridlet("config", "check", str(good), "--board", "nonexistent-board", "--board", "generic-x86_64")
    assert r.returncode == 0, r.stderr
    r = gridlet("status", "--count", "-1")
    assert r.returncode == 2 and r.stderr.startswith("Error: Missing value for '--count <count>'")
    r = gridlet("status", "--count=-1", "--socket", str(tmp_path / "none"))
    assert (r.returncode, r.stderr.strip()) == (2, "gridlet: --count must be 0 (until Ctrl-C) or more")
    r = gridlet("ledger", "--by", "day", "--config", str(good))
    assert (r.returncode, r.stderr.strip()) == (2, "gridlet: --by: expected market or source, got 'day'")
