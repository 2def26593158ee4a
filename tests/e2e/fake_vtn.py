"""A fake OpenADR 3.1.1 VTN for the e2e tests: Python's standard library http.server on
127.0.0.1 and a free port, implementing what gridlet's VEN uses (GET /auth/server, POST
/auth/token with OAuth2 client credentials, GET /programs, GET /events with programID, targets,
skip and limit, ETag/If-None-Match, GET /notifiers and the programmes' events topics when
`mqtt_notifier` names a broker, POST /reports and GET /reports with eventID and clientName, GET and
POST /vens and /resources),
enforcing token expiry, and recording every request. The objects it serves are checked against
the specification's openadr3.yaml (check_object), and so is every report it receives: one that
does not validate is answered 400 and kept in `invalid_reports`."""
import datetime
import hashlib
import json
import os
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# The OpenADR Alliance's OpenAPI definition (Apache 2.0, see openadr3/LICENSE and NOTICE), copied
# from the 3.1.1 specification.
SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openadr3", "openadr3.yaml")

_validators = {}


def check_object(obj, schema):
    """Raises AssertionError unless obj validates against components/schemas/<schema> of openadr3.yaml."""
    if not _validators:
        with open(SPEC) as f:
            spec = yaml.safe_load(f)
        _validators["registry"] = Registry().with_resource("urn:openadr3", Resource.from_contents(spec, default_specification=DRAFT4))
    if schema not in _validators:
        _validators[schema] = OAS30Validator({"$ref": f"urn:openadr3#/components/schemas/{schema}"}, registry=_validators["registry"])
    errors = [e.message for e in _validators[schema].iter_errors(obj)]
    assert not errors, f"not a valid OpenADR {schema}: {errors}: {json.dumps(obj)}"
    return obj


def check_served(obj, request_schema, request_type):
    """A ven or resource as the VTN serves it. openadr3.yaml's `ven` (`resource`) is allOf
    objectMetadata (objectType VEN) and BlVenRequest (objectType BL_VEN_REQUEST): no object can
    satisfy both, so the two parts are checked apart."""
    check_object(obj, "objectMetadata")
    check_object(dict(obj, objectType=request_type), request_schema)
    return obj


def rfc3339(t):
    """Unix seconds -> RFC 3339 UTC with milliseconds."""
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(dt.microsecond / 1000):03d}Z"


def program(pid, name):
    now = rfc3339(time.time())
    return check_object({"id": pid, "createdDateTime": now, "modificationDateTime": now, "objectType": "PROGRAM",
                         "programName": name}, "program")


def limit_event(eid, program_id, start, interval_s, kws, units="KW", payload="IMPORT_CAPACITY_LIMIT", **extra):
    """An event with one interval per value in kws, contiguous from `start` (Unix seconds)."""
    now = rfc3339(time.time())
    e = {"id": eid, "createdDateTime": now, "modificationDateTime": now, "objectType": "EVENT", "programID": program_id,
         "eventName": f"test {eid}", "priority": 1,
         "payloadDescriptors": [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": payload, "units": units}],
         "intervalPeriod": {"start": rfc3339(start), "duration": f"PT{interval_s}S"},
         "intervals": [{"id": i, "payloads": [{"type": payload, "values": [v]}]} for i, v in enumerate(kws)]}
    e.update(extra)
    return check_object(e, "event")


class FakeVTN:
    def __init__(self, client_id="ven-client", client_secret="s3cret", token_lifetime_s=3600, tls=None):
        self.port = None
        self.lock = threading.Lock()
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime_s = token_lifetime_s
        self.tokens = {}          # token -> expiry (monotonic)
        self.issued = 0
        self.programs = []
        self.events = []          # objects (or raw bytes: served as the whole /events body)
        self.raw_events_body = None
        self.requests = []        # (monotonic time, method, path, query dict, status)
        self.tls = tls            # (certfile, keyfile) or None
        self.mqtt_notifier = None  # "mqtt://127.0.0.1:PORT": offer it at GET /notifiers
        self.reports = []          # the report objects created by POST /reports, in order
        self.invalid_reports = []  # (body, error) of POSTed reports that did not validate
        self.report_status = None  # answer every POST /reports with this status instead (e.g. 500, 400)
        self.store_then_fail = False  # keep a valid report but answer 503, as if the answer got lost
        self.vens = []             # ven objects (GET/POST /vens)
        self.resources = []        # resource objects (GET/POST /resources)
        self.registration = "open"  # "open", "refuse" (403 on POST /vens and /resources), "absent" (404: no such endpoints)
        self.server = None
        self.thread = None

    # -- content

    def set(self, programs=None, events=None):
        with self.lock:
            if programs is not None:
                self.programs = programs
            if events is not None:
                self.events = events

    # -- lifecycle

    def start(self):
        vtn = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                vtn._handle(self, "GET")

            def do_POST(self):
                vtn._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        self.server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # -- what happened

    def gets(self, path):
        with self.lock:
            return [r for r in self.requests if r[1] == "GET" and r[2] == path]

    def posts(self, path):
        with self.lock:
            return [r for r in self.requests if r[1] == "POST" and r[2] == path]

    def statuses(self):
        with self.lock:
            return [r[4] for r in self.requests]

    # -- the protocol

    def _reply(self, h, status, body=None, headers=()):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        if data:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        return status

    def _problem(self, h, status, title, detail):
        return self._reply(h, status, {"title": title, "status": status, "detail": detail})

    def _handle(self, h, method):
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query)
        status = self._route(h, method, url.path, query)
        with self.lock:
            self.requests.append((time.monotonic(), method, url.path, query, status))

    def _route(self, h, method, path, query):
        if method == "GET" and path == "/auth/server":
            return self._reply(h, 200, check_object({"tokenURL": f"{self.url}/auth/token"}, "authServerInfo"))
        if method == "POST" and path == "/auth/token":
            length = int(h.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(h.rfile.read(length).decode())
            if form.get("grant_type") != ["client_credentials"]:
                return self._reply(h, 400, {"error": "unsupported_grant_type"})
            if form.get("client_id") != [self.client_id] or form.get("client_secret") != [self.client_secret]:
                return self._reply(h, 401, {"error": "invalid_client", "error_description": "unknown client or wrong secret"})
            with self.lock:
                self.issued += 1
                token = f"tok-{self.issued}"
                self.tokens[token] = time.monotonic() + self.token_lifetime_s
            return self._reply(h, 200, check_object({"access_token": token, "token_type": "Bearer",
                                                     "expires_in": self.token_lifetime_s}, "clientCredentialResponse"))
        auth = h.headers.get("Authorization", "")
        with self.lock:
            expiry = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if expiry is None or time.monotonic() >= expiry:
            return self._problem(h, 401, "Unauthorized", "missing, unknown or expired token")
        skip = int(query.get("skip", ["0"])[0])
        limit = int(query.get("limit", ["50"])[0])
        if method == "GET" and path == "/notifiers":
            body = {"WEBHOOK": True}
            if self.mqtt_notifier:
                body["MQTT"] = {"URIS": [self.mqtt_notifier], "serialization": "JSON", "authentication": {"method": "ANONYMOUS"}}
            return self._reply(h, 200, check_object(body, "notifiersResponse"))
        parts = path.split("/")
        if method == "GET" and self.mqtt_notifier and len(parts) == 7 and parts[1:5] == ["notifiers", "mqtt", "topics", "programs"] \
                and parts[6] == "events":
            pid = parts[5]
            topics = {"CREATE": f"programs/{pid}/events/create", "UPDATE": f"programs/{pid}/events/update",
                      "DELETE": f"programs/{pid}/events/delete", "ALL": f"programs/{pid}/events/+"}
            return self._reply(h, 200, check_object({"topics": topics}, "notifierTopicsResponse"))
        if method == "POST" and path == "/reports":
            length = int(h.headers.get("Content-Length", "0"))
            raw = h.rfile.read(length)
            with self.lock:
                forced = self.report_status
            if forced is not None:
                return self._problem(h, forced, "Forced", f"the test answers {forced}")
            try:
                body = json.loads(raw)
                check_object(body, "reportRequest")
            except (ValueError, AssertionError) as e:
                with self.lock:
                    self.invalid_reports.append((raw, str(e)))
                return self._problem(h, 400, "Bad Request", str(e)[:300])
            now = rfc3339(time.time())
            with self.lock:
                report = dict(body, id=f"rep-{len(self.reports) + 1}", createdDateTime=now, modificationDateTime=now,
                              objectType="REPORT", clientID=auth[7:])
                check_object(report, "report")
                self.reports.append(report)
                lost = self.store_then_fail
            if lost:
                return self._problem(h, 503, "Service Unavailable", "stored, but the test says the answer got lost")
            return self._reply(h, 201, report)
        if method == "GET" and path == "/reports":
            with self.lock:
                items = [r for r in self.reports
                         if all(r.get(k) == query[k][0] for k in ("eventID", "clientName", "programID") if k in query)]
            return self._list(h, items[skip:skip + limit])
        if path in ("/vens", "/resources"):
            return self._registration(h, method, path, query, auth[7:], skip, limit)
        if method == "GET" and path == "/programs":
            with self.lock:
                items = list(self.programs)
            return self._list(h, items[skip:skip + limit])
        if method == "GET" and path == "/events":
            with self.lock:
                if self.raw_events_body is not None:
                    return self._reply(h, 200, self.raw_events_body)
                pid = query.get("programID", [None])[0]
                items = [e for e in self.events if not isinstance(e, dict) or pid is None or e.get("programID") == pid]
            return self._list(h, items[skip:skip + limit])
        return self._problem(h, 404, "Not Found", "Unrecognized URL")

    def _registration(self, h, method, path, query, client, skip, limit):
        with self.lock:
            mode = self.registration
        if mode == "absent":
            return self._problem(h, 404, "Not Found", "Unrecognized URL")
        if method == "GET":
            with self.lock:
                if path == "/vens":
                    items = [v for v in self.vens if "venName" not in query or v["venName"] == query["venName"][0]]
                else:
                    items = [r for r in self.resources if all(r[k] == query[k][0] for k in ("venID", "resourceName") if k in query)]
            return self._list(h, items[skip:skip + limit])
        if method != "POST":
            return self._problem(h, 405, "Method Not Allowed", method)
        if mode == "refuse":
            return self._problem(h, 403, "Forbidden", "VENs may not register themselves at this VTN")
        length = int(h.headers.get("Content-Length", "0"))
        try:
            body = json.loads(h.rfile.read(length))
            check_object(body, "venRequest" if path == "/vens" else "resourceRequest")
        except (ValueError, AssertionError) as e:
            return self._problem(h, 400, "Bad Request", str(e)[:300])
        now = rfc3339(time.time())
        with self.lock:
            if path == "/vens":
                if any(v["venName"] == body["venName"] for v in self.vens):
                    return self._problem(h, 409, "Conflict", "venName exists")
                obj = check_served({"id": f"ven-{len(self.vens) + 1}", "createdDateTime": now, "modificationDateTime": now,
                                    "objectType": "VEN", "clientID": client, "venName": body["venName"]}, "BlVenRequest", "BL_VEN_REQUEST")
                self.vens.append(obj)
            else:
                if not any(v["id"] == body["venID"] for v in self.vens):
                    return self._problem(h, 404, "Not Found", "no such ven")
                obj = check_served({"id": f"res-{len(self.resources) + 1}", "createdDateTime": now, "modificationDateTime": now,
                                    "objectType": "RESOURCE", "clientID": client, "resourceName": body["resourceName"],
                                    "venID": body["venID"]}, "BlResourceRequest", "BL_RESOURCE_REQUEST")
                self.resources.append(obj)
        return self._reply(h, 201, obj)

    def _list(self, h, items):
        body = json.dumps(items).encode()
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        if h.headers.get("If-None-Match") == etag:
            return self._reply(h, 304, None, [("ETag", etag)])
        return self._reply(h, 200, body, [("ETag", etag)])
