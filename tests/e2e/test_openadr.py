"""gridlet as an OpenADR 3.1 VEN against a fake VTN (fake_vtn.py, objects checked against the
specification's openadr3.yaml): an IMPORT_CAPACITY_LIMIT event drives the simulated charger
interval by interval and keeps running when the VTN (and the broker) go away, a deleted event is
cancelled and the charger restored, the token is refreshed without a missed poll, and bad objects
are ignored with a log line naming them."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import GRIDLET, Agent, wait_until
from fake_vtn import FakeVTN, check_object, limit_event, program


@pytest.fixture
def vtn():
    v = FakeVTN().start()
    v.set(programs=[program("prog-vpp", "vpp"), program("prog-other", "other")])
    yield v
    v.stop()


def openadr_config(site, vtn, workdir, poll="5s", comm_loss="120s", fallback=None, extra=""):
    secret = os.path.join(workdir, "vtn.secret")
    with open(secret, "w") as f:
        f.write(vtn.client_secret + "\n")
    text = site.config_text("1s", comm_loss)
    if fallback is not None:
        text = text.replace("fallback_limit_w: 4140", f"fallback_limit_w: {fallback}")
    return text + f"""openadr:
  vtn_url: {vtn.url}
  auth:
    client_id: {vtn.client_id}
    client_secret_file: {secret}
  ven_name: ven-e2e
  programs: [vpp]
  resources: [evse]
  poll_interval: {poll}
{extra}"""


def status(agent):
    return agent.status()["openadr"]


def events_json(agent):
    r = subprocess.run([GRIDLET, "events", "--json", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["events"]


def test_event_runs_interval_by_interval_and_through_a_vtn_and_broker_outage(site, vtn):
    """4.14 kW then 6.9 kW: 6 A in the first interval, 10 A in the second; the VTN and the broker
    stop during the first interval and the event still runs to its end; only then the fallback."""
    start = time.time() + 8
    vtn.set(events=[limit_event("evt-1", "prog-vpp", start, 8, [4.14, 6.9])])
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir, comm_loss="5s", fallback=2760))
    util = site.make_collector()
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="the default setpoint")
    wait_until(lambda: any(e["id"] == "oadr:evt-1:0" for e in events_json(agent)), 10, what="the VTN's event stored")
    listed = {e["id"]: e for e in events_json(agent)}
    assert listed["oadr:evt-1:0"]["source"] == "openadr" and listed["oadr:evt-1:0"]["limit_w"] == 4140
    assert listed["oadr:evt-1:1"]["limit_w"] == 6900
    st = wait_until(lambda: (lambda s: s if s["events"] else None)(status(agent)), 5, what="the VTN's event in the status")
    assert st["ok"] is True and st["programs"] == [{"name": "vpp", "id": "prog-vpp"}]
    assert st["events"][0]["id"] == "evt-1" and st["events"][0]["windows"] == ["oadr:evt-1:0", "oadr:evt-1:1"]
    assert st["token_expires"] is not None
    util.wait_for("responses", lambda p: p["event"] == "oadr:evt-1:0" and p["status"] == 1)

    wait_until(lambda: ch.last_value(5004) == 6, 15, what="6 A in the first interval")
    assert time.time() < start + 8, "the first interval's limit came late"
    # Both dispatch links go away during the first interval.
    vtn.stop()
    site.broker.stop()
    wait_until(lambda: ch.last_value(5004) == 10, 15, what="the second interval's 10 A")
    assert start + 8 - 0.5 <= time.time() < start + 16
    # Comm is lost (5 s) during the second interval, but the event runs to its end ...
    wait_until(lambda: agent.status()["state"]["comm"]["ok"] is False, 10, what="comm lost")
    assert ch.last_value(5004) == 10
    assert agent.status()["state"]["source"] == "dispatch:oadr:evt-1:1"
    # ... and only then the fallback (2760 W = 4 A: below min_current, paused).
    wait_until(lambda: ch.last_value(5004) == 0, 15, what="the fallback after the event")
    assert time.time() >= start + 16 - 0.5
    st = status(agent)
    assert st["ok"] is False and st["last_error"]["kind"] == "connect"
    assert "cannot connect" in st["last_error"]["message"]
    assert "OpenADR: GET http://127.0.0.1:" in agent.logtext()

    # The VTN comes back: contact again, the default limit after the (zero) restore delay.
    vtn.start()
    wait_until(lambda: ch.last_value(5004) == 16, 20, what="the default after the VTN is back")
    wait_until(lambda: agent.status()["state"]["comm"]["ok"] is True, 5, what="comm ok in the status")
    assert "VTN answering again" in agent.logtext()
    assert agent.stop() == 0


def test_a_deleted_event_is_cancelled_and_the_charger_restored(site, vtn):
    vtn.set(events=[limit_event("evt-del", "prog-vpp", time.time() - 1, 120, [4.14]),
                    limit_event("evt-keep", "prog-other", time.time() - 1, 120, [0.0])])
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir))
    util = site.make_collector()
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 6, 20, what="the event's 6 A")
    util.wait_for("responses", lambda p: p["event"] == "oadr:evt-del:0" and p["status"] == 2)
    # MQTT events live beside it, untouched by the VTN's set.
    util.publish("event", {"id": "mqtt-1", "duration_s": 600, "limit_w": 9000, "start": "2099-01-01T00:00:00.000Z"})
    util.wait_for("reply", lambda p: p.get("id") == "mqtt-1" and p["ok"] is True)
    vtn.set(events=[e for e in vtn.events if e["id"] != "evt-del"])
    util.wait_for("responses", lambda p: p["event"] == "oadr:evt-del:0" and p["status"] == 6, timeout=15)
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="the charger restored")
    assert [(e["id"], e["source"]) for e in events_json(agent)] == [("mqtt-1", "mqtt")]
    assert agent.stop() == 0


def test_a_received_event_survives_a_restart_while_the_vtn_is_down(site, vtn):
    """What the VTN sent is in control.json: after kill -9 and a start with the VTN gone, the
    event is enforced from disk, and the VTN's error is in the status."""
    vtn.set(events=[limit_event("evt-disk", "prog-vpp", time.time() - 1, 120, [4.14])])
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir, fallback=2760))   # fallback 0 A, default 16 A
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 6, 20, what="the event")
    # The limit applies at once; the state writer thread persists it right after (docs/openadr.md).
    path = os.path.join(site.workdir, "state", "control.json")

    def stored():
        if not os.path.exists(path):
            return False
        with open(path) as f:
            return "oadr:evt-disk:0" in f.read()
    wait_until(stored, 5, what="the event in control.json")
    agent.kill9()
    vtn.stop()
    writes = len(ch.writes(5004))
    agent.start()
    wait_until(lambda: len(ch.writes(5004)) > writes, 20, what="the restarted agent's first setpoint")
    assert all(w["values"][0] == 6 for w in ch.writes(5004)[writes:]), ch.writes(5004)[writes:]
    wait_until(lambda: (status(agent)["last_error"] or {}).get("kind") == "connect", 15, what="the VTN's absence in the status")
    assert [e["id"] for e in events_json(agent)] == ["oadr:evt-disk:0"]
    assert agent.stop() == 0


def test_the_token_is_refreshed_before_it_expires_without_a_missed_poll(site, vtn):
    vtn.token_lifetime_s = 12
    vtn.set(events=[limit_event("evt-t", "prog-vpp", time.time() + 3600, 60, [4.14])])
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir))
    agent.start()
    wait_until(lambda: len(vtn.gets("/programs")) >= 1, 10, what="the first poll")
    time.sleep(32)
    polls = [r[0] for r in vtn.gets("/programs")]
    st = status(agent)
    assert agent.stop() == 0
    assert vtn.issued >= 3, f"tokens issued: {vtn.issued}"
    # The VTN refuses expired tokens; no request ever needed a second try, and no poll failed.
    assert 401 not in vtn.statuses()
    assert st["failed_polls"] == 0 and st["ok"] is True
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    assert len(polls) >= 6 and max(gaps) < 5 * 1.1 + 1, gaps
    # Unchanged answers come back as 304 (ETag).
    assert 304 in vtn.statuses()


def test_bad_objects_are_ignored_with_a_log_line_naming_them(site, vtn):
    good = limit_event("evt-good", "prog-vpp", time.time() - 1, 300, [4.14])
    unknown = limit_event("evt-unknown", "prog-vpp", time.time() - 1, 300, [1], payload="FROBNICATE", units=None)
    kwh = limit_event("evt-kwh", "prog-vpp", time.time() - 1, 300, [1], units="KWH")
    other = limit_event("evt-other-site", "prog-vpp", time.time() - 1, 300, [0], targets=["feeder-99"])
    vtn.set(events=[good, unknown, kwh, other, {"id": 42, "programID": "prog-vpp"}])
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir))
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 6, 20, what="the good event")
    log = agent.logtext()
    assert "OpenADR: event 'evt-unknown' interval [0] (id 0): payload type FROBNICATE is not one gridlet acts on; ignored" in log
    assert "OpenADR: event 'evt-kwh' interval [0] (id 0): IMPORT_CAPACITY_LIMIT in units KWH (gridlet takes KW or W); ignored" in log
    assert "OpenADR: event 'evt-other-site' (programme vpp): its targets [\"feeder-99\"] name none of this site's" in log
    assert "OpenADR: event [4] has no valid id; ignored" in log
    assert [e["id"] for e in events_json(agent)] == ["oadr:evt-good:0"]
    # The status snapshot follows within a moment.
    wait_until(lambda: len(status(agent)["ignored"]) == 4, 5, what="the ignored objects in the status")
    # Malformed JSON from the VTN: the poll is ignored and said so; nothing else changes.
    vtn.raw_events_body = b'[{"id": "evt-good", '
    wait_until(lambda: "the VTN answered malformed JSON" in agent.logtext(), 15, what="the malformed answer logged")
    assert [e["id"] for e in events_json(agent)] == ["oadr:evt-good:0"]
    assert ch.last_value(5004) == 6
    # Each problem is said once, not at every poll.
    time.sleep(6)
    assert agent.logtext().count("payload type FROBNICATE") == 1
    assert agent.stop() == 0


def test_wrong_credentials_and_an_untrusted_certificate_are_said_plainly(site, workdir):
    # An HTTPS VTN with a self-signed certificate for 127.0.0.1.
    cert, key = os.path.join(workdir, "vtn.pem"), os.path.join(workdir, "vtn.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    vtn = FakeVTN(tls=(cert, key)).start()
    try:
        vtn.set(programs=[program("prog-vpp", "vpp")],
                events=[limit_event("evt-tls", "prog-vpp", time.time() - 1, 300, [4.14])])
        # Not trusted: TLS verification is always on.
        agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir))
        agent.start()
        wait_until(lambda: status(agent)["last_error"] is not None, 15, what="the TLS error")
        err = status(agent)["last_error"]
        assert err["kind"] == "tls" and "TLS failed" in err["message"] and "openadr.ca_file" in err["message"], err
        assert agent.stop() == 0
        # Trusted with ca_file, but the wrong secret: the token endpoint's refusal, in words.
        text = openadr_config(site, vtn, site.workdir, extra=f"  ca_file: {cert}\n")
        agent = Agent(site.workdir, text)
        with open(os.path.join(workdir, "vtn.secret"), "w") as f:
            f.write("wrong\n")
        agent.start()
        wait_until(lambda: status(agent)["last_error"] is not None, 15, what="the auth error")
        err = status(agent)["last_error"]
        assert err["kind"] == "auth", err
        assert "HTTP 401 invalid_client: unknown client or wrong secret; check openadr.auth.client_id and client_secret_file" in err["message"]
        assert "invalid_client" in agent.logtext()
        # The right secret: the event applies (a restart re-reads the secret file).
        assert agent.stop() == 0
        with open(os.path.join(workdir, "vtn.secret"), "w") as f:
            f.write(vtn.client_secret + "\n")
        agent = Agent(site.workdir, text)
        agent.start()
        wait_until(lambda: site.charger.last_value(5004) == 6, 20, what="the event over TLS")
        assert agent.stop() == 0
    finally:
        vtn.stop()


def test_a_site_with_openadr_and_no_mqtt(site, vtn):
    """mqtt: may be left out when openadr: is there: the VTN alone dispatches."""
    vtn.set(events=[limit_event("evt-solo", "prog-vpp", time.time() - 1, 120, [4.14])])
    text = re.sub(r"mqtt:\n(  .*\n)+", "", openadr_config(site, vtn, site.workdir))
    assert "mqtt" not in text
    agent = Agent(site.workdir, text)
    r = subprocess.run([GRIDLET, "config", "check", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    agent.start()
    wait_until(lambda: site.charger.last_value(5004) == 6, 20, what="the VTN's event without a broker")
    st = agent.status()
    assert st["mqtt"]["connected"] is False and st["mqtt"]["broker"] is None
    assert "broker none (OpenADR only)" in agent.logtext()
    assert agent.stop() == 0


def test_a_notification_makes_the_agent_read_within_a_second(site, vtn):
    """The VTN offers an MQTT notifier (here the site's mosquitto): the agent subscribes to the
    programme's event topics over a second connection; a notification makes it poll at once,
    although its poll interval is 5 minutes."""
    import paho.mqtt.client as mqtt
    vtn.mqtt_notifier = f"mqtt://127.0.0.1:{site.broker.port}"
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir, poll="5m"))
    agent.start()
    n = wait_until(lambda: (status(agent)["notifier"] or {}).get("connected") and status(agent)["notifier"], 15,
                   what="the notifier connection")
    assert n["topics"] == ["programs/prog-vpp/events/+"] and n["uri"] == vtn.url.replace("http://", "mqtt://").rsplit(":", 1)[0] + f":{site.broker.port}"
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="the default setpoint")
    polls_before = len(vtn.gets("/events"))
    event = limit_event("evt-n", "prog-vpp", time.time() - 1, 120, [4.14])
    vtn.set(events=[event])
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="vtn-notifier")
    pub.connect("127.0.0.1", site.broker.port)
    pub.loop_start()
    try:
        # The spec's notification schema cannot be checked whole (its discriminator names a
        # schema "EVENT" that does not exist): its parts are.
        note = {"objectType": check_object("EVENT", "objectTypes"), "operation": "CREATE", "object": check_object(event, "event")}
        sent = time.monotonic()
        pub.publish("programs/prog-vpp/events/create", json.dumps(note), qos=1).wait_for_publish(5)
        wait_until(lambda: len(vtn.gets("/events")) > polls_before, 5, interval=0.01, what="the re-read after the notification")
        read = vtn.gets("/events")[polls_before][0]
        assert read - sent < 1.0, f"re-read {read - sent:.3f} s after the notification"
        wait_until(lambda: ch.last_value(5004) == 6, 5, what="the notified event applied")
        wait_until(lambda: status(agent)["notifier"]["notifications"] >= 1, 5, what="the notification counted")
    finally:
        pub.loop_stop()
        pub.disconnect()
    assert "OpenADR notifier connected to mqtt://127.0.0.1:" in agent.logtext()
    assert agent.stop() == 0


def test_served_objects_validate_against_the_specification():
    """The fake VTN's own objects are the specification's: a broken one is caught."""
    e = limit_event("e", "p", time.time(), 60, [1.0])
    check_object(e, "event")
    with pytest.raises(AssertionError):
        check_object({**e, "intervals": [{"payloads": []}]}, "event")


def test_the_ven_and_its_resource_are_registered_once_and_a_refusal_is_not_fatal(site, vtn):
    """GET /vens?venName= finds nothing: POST /vens, then the same for the resource; the next start
    finds both and creates nothing. A VTN that forbids it (403) or has no /vens (404) is said
    plainly in the status and the log, and polling goes on."""
    agent = Agent(site.workdir, openadr_config(site, vtn, site.workdir))
    agent.start()
    reg = wait_until(lambda: status(agent)["registration"], 15, what="the registration in the status")
    assert reg["ven"]["state"] == "created" and reg["ven"]["name"] == "ven-e2e" and reg["ven"]["id"] == "ven-1"
    assert [(r["name"], r["state"], r["id"]) for r in reg["resources"]] == [("evse", "created", "res-1")]
    assert [v["venName"] for v in vtn.vens] == ["ven-e2e"]
    assert [(r["resourceName"], r["venID"]) for r in vtn.resources] == [("evse", "ven-1")]
    assert "OpenADR: ven 'ven-e2e' registered at the VTN (created, id ven-1)" in agent.logtext()
    assert agent.stop() == 0
    agent.start()
    reg = wait_until(lambda: (lambda r: r if r and r["ven"]["state"] == "found" else None)(status(agent)["registration"]), 15,
                     what="the ven found at the second start")
    assert [(r["name"], r["state"]) for r in reg["resources"]] == [("evse", "found")]
    assert len(vtn.vens) == 1 and len(vtn.resources) == 1 and len(vtn.posts("/vens")) == 1
    assert agent.stop() == 0

    for mode, state, words in [("refuse", "refused", "403 Forbidden (Forbidden: VENs may not register themselves at this VTN): "
                                                     "the VTN does not let this VEN create ven 'ven-e2e'; ask the programme operator to enrol it"),
                               ("absent", "not_offered", "404 Not Found (Not Found: Unrecognized URL): the VTN does not offer "
                                                         "registration; ven 'ven-e2e' is taken as enrolled out of band")]:
        vtn.vens.clear()
        vtn.resources.clear()
        vtn.registration = mode
        agent.start()
        reg = wait_until(lambda: status(agent)["registration"], 15, what=f"the registration ({mode})")
        assert reg["ven"]["state"] == state and words in reg["ven"]["message"], reg
        wait_until(lambda: status(agent)["last_success"] is not None, 10, what="a successful poll all the same")
        assert status(agent)["ok"] is True
        assert words in agent.logtext()
        assert agent.stop() == 0
