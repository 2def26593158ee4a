"""OpenADR reports end to end: an event asking for USAGE gets one report per ledger interval whose
energy is the site meter's import over it (a meter whose register rises at a known rate, so the
expected energy is exact), every report validated by the fake VTN against openadr3.yaml, and each
interval arrives exactly once: across an answer that got lost (the VTN stored it), a kill -9 while
a report waits, a clean stop and a VTN outage while an interval closes."""
import datetime
import subprocess
import time

import pytest

from conftest import GRIDLET, Agent, wait_until
from fake_vtn import FakeVTN, check_object, limit_event, program, rfc3339
from ramp_meter import RampMeter
from test_openadr import openadr_config

RATE_KWH_PER_S = 0.001   # 3.6 kW: 1 Wh per second


@pytest.fixture
def vtn():
    v = FakeVTN().start()
    v.set(programs=[program("prog-vpp", "vpp")])
    yield v
    v.stop()


@pytest.fixture
def ramp():
    m = RampMeter(kwh_per_s=RATE_KWH_PER_S)
    yield m
    m.stop()


def usage_event(eid, start, intervals, interval_s=60, units="KWH"):
    """A report-only event (empty payloads) of `intervals` intervals asking for USAGE."""
    now = rfc3339(time.time())
    return check_object({
        "id": eid, "createdDateTime": now, "modificationDateTime": now, "objectType": "EVENT", "programID": "prog-vpp",
        "eventName": f"usage {eid}", "intervalPeriod": {"start": rfc3339(start), "duration": f"PT{interval_s}S"},
        "intervals": [{"id": i, "payloads": []} for i in range(intervals)],
        "reportDescriptors": [{"payloadType": "USAGE", "readingType": "DIRECT_READ", "units": units}]}, "event")


def reports_config(site, vtn, ramp):
    text = openadr_config(site, vtn, site.workdir, poll="5s")
    text = text.replace("telemetry:\n  interval: 1s\n", "telemetry:\n  interval: 1s\n  ledger_interval: 1m\n")
    assert f"port: {site.meter.port}\n" in text
    return text.replace(f"port: {site.meter.port}\n", f"port: {ramp.port}\n")


def parse(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def span(report):
    res = report["resources"][0]
    start = parse(res["intervalPeriod"]["start"])
    d = res["intervalPeriod"]["duration"]
    assert d.startswith("PT") and d.endswith("S"), d
    return start, start + float(d[2:-1])


def usage_kwh(report):
    return report["resources"][0]["intervals"][0]["payloads"][0]["values"][0]


def next_boundary(after):
    return (int(after) // 60 + 1) * 60


def reports_status(agent):
    return agent.status()["openadr"]["reports"]


def test_usage_reports_arrive_once_with_the_meters_energy_across_restarts_and_an_outage(site, vtn, ramp):
    minute = int(time.time()) // 60 * 60
    vtn.set(events=[usage_event("evt-u", minute - 60, 12)])
    agent = Agent(site.workdir, reports_config(site, vtn, ramp))
    # 1. The VTN stores the first report but its answer is lost: the agent must not post it twice.
    vtn.store_then_fail = True
    agent.start()
    wait_until(lambda: len(vtn.reports) >= 1, 75, what="the first USAGE report at the VTN")
    wait_until(lambda: reports_status(agent)["failed_tries"] >= 1, 10, what="the lost answer counted as a failure")
    assert reports_status(agent)["queued"] >= 1
    # 2. kill -9 while it waits for its next try; the restarted agent looks it up and finds it.
    agent.kill9()
    vtn.store_then_fail = False
    agent.start()
    wait_until(lambda: reports_status(agent)["queued"] == 0 and reports_status(agent)["delivered"] >= 1, 30,
               what="the report found at the VTN after the restart")
    assert "was already at the VTN; not sent again" in agent.logtext()
    first_count = len(vtn.reports)
    # 3. A clean stop and start in the middle of the next interval.
    b2 = next_boundary(time.time())
    time.sleep(max(0, b2 - 30 - time.time()))
    assert agent.stop() == 0
    time.sleep(2)
    agent.start()
    wait_until(lambda: any(span(r)[1] >= b2 for r in vtn.reports), max(10, b2 - time.time() + 20),
               what="the report of the interval across the clean stop")
    # 4. The VTN is down while the next interval closes, and back 15 s later.
    b3 = next_boundary(time.time())
    time.sleep(max(0, b3 - 8 - time.time()))
    vtn.stop()
    time.sleep(max(0, b3 + 15 - time.time()))
    st = reports_status(agent)
    assert st["queued"] >= 1 and st["last"]["ok"] is False and "cannot connect" in st["last"]["result"], st
    vtn.start()
    wait_until(lambda: any(span(r)[1] >= b3 for r in vtn.reports), 60, what="the report of the outage's interval")
    wait_until(lambda: reports_status(agent)["queued"] == 0, 10, what="the queue empty of reports")
    assert agent.stop() == 0

    # Every report validated, each interval exactly once, contiguous, with the meter's energy.
    assert vtn.invalid_reports == []
    reports = vtn.reports
    names = [r["reportName"] for r in reports]
    assert len(names) == len(set(names)), names
    spans = sorted(span(r) for r in reports)
    assert len(spans) >= 3 and first_count >= 1
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a1 == b0, spans
    assert spans[-1][1] >= b3
    for r in reports:
        s0, s1 = span(r)
        assert r["eventID"] == "evt-u" and r["clientName"] == "ven-e2e" and r["resources"][0]["resourceName"] == "evse"
        assert s1 - s0 <= 60 and (s1 % 60 == 0), r
        assert abs(usage_kwh(r) - RATE_KWH_PER_S * (s1 - s0)) < 5e-5, (r, RATE_KWH_PER_S * (s1 - s0))
        assert r["payloadDescriptors"][0]["units"] == "KWH"
    # Full intervals after the first: 60 s each, 0.06 kWh.
    assert all(s1 - s0 == 60 for s0, s1 in spans[1:]), spans
    posts = vtn.posts("/reports")
    assert len([p for p in posts if p[4] == 201]) + 1 == len(reports)   # the lost answer's report was not posted again


def test_a_report_the_vtn_refuses_is_dropped_with_a_line_naming_it(site, vtn, ramp):
    minute = int(time.time()) // 60 * 60
    vtn.set(events=[usage_event("evt-r", minute - 60, 5)])
    vtn.report_status = 400
    agent = Agent(site.workdir, reports_config(site, vtn, ramp))
    agent.start()
    wait_until(lambda: reports_status(agent)["dropped"] >= 1, 75, what="the refused report dropped")
    st = reports_status(agent)
    assert st["queued"] == 0 and st["last"]["ok"] is False and "400" in st["last"]["result"]
    log = agent.logtext()
    assert "OpenADR: report usage:evt-r:" in log and "dropped: the VTN refused it" in log and "HTTP 400" in log
    assert len(vtn.posts("/reports")) == 1     # not sent again
    assert agent.stop() == 0


def test_a_local_opt_out_is_reported_where_the_event_asks_for_operating_state(site, vtn):
    """`gridlet optout` of a window whose event asks for OPERATING_STATE: the charger is released
    and the VTN gets a RUNNING_OPTED_OUT report (the meter shows 4.3 kW of import); an event that
    does not ask for it refuses the opt-out and nothing is reported."""
    def event(eid, descriptors):
        e = limit_event(eid, "prog-vpp", time.time() - 1, 600, [4.14])
        e["reportDescriptors"] = descriptors
        return check_object(e, "event")
    vtn.set(events=[event("evt-o", [{"payloadType": "OPERATING_STATE"}])])
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir))
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 6, 20, what="the event's 6 A")
    r = subprocess.run([GRIDLET, "optout", "oadr:evt-o:0", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="the charger released by the opt-out")
    wait_until(lambda: len(vtn.reports) == 1, 15, what="the opt-out report at the VTN")
    rep = vtn.reports[0]
    assert rep["eventID"] == "evt-o" and rep["reportName"] == "optout:evt-o:0" and rep["clientName"] == "ven-e2e"
    assert rep["payloadDescriptors"][0]["payloadType"] == "OPERATING_STATE"
    iv = rep["resources"][0]["intervals"][0]
    assert iv["id"] == 0 and iv["payloads"] == [{"type": "OPERATING_STATE", "values": ["RUNNING_OPTED_OUT"]}]
    assert vtn.invalid_reports == []

    # Not asked for OPERATING_STATE: the opt-out is refused, the limit stays, the VTN hears nothing.
    vtn.set(events=[event("evt-n", [])])
    wait_until(lambda: ch.last_value(5004) == 6, 20, what="the second event's 6 A")
    r = subprocess.run([GRIDLET, "optout", "oadr:evt-n:0", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "does not allow opt-out" in (r.stdout + r.stderr), (r.stdout, r.stderr)
    time.sleep(2)
    assert ch.last_value(5004) == 6 and len(vtn.reports) == 1
    assert agent.stop() == 0
