import Glibc
import GridletCore
import GridletSys
import Synchronization

/// What `state_dir/metrics.prom` reports: a snapshot of the agent taken by the control loop,
/// rendered in the Prometheus text exposition format (version 0.0.4) for node_exporter's
/// textfile collector. Pure data + rendering, so it is unit-tested without an agent.
public struct MetricsSnapshot: Sendable, Equatable {
    public struct Device: Sendable, Equatable {
        public var name: String
        public var up: Bool
        public var pollsOK: Int
        public var pollErrors: Int
        /// Duration of the last completed poll (all register blocks of the device), seconds.
        public var lastPollSeconds: Double?
        public init(name: String, up: Bool, pollsOK: Int, pollErrors: Int, lastPollSeconds: Double?) {
            self.name = name; self.up = up; self.pollsOK = pollsOK; self.pollErrors = pollErrors
            self.lastPollSeconds = lastPollSeconds
        }
    }

    public var version: String
    public var startTimeSeconds: Double
    public var devices: [Device]
    public var mqttConnected: Bool
    public var published: Int
    public var acked: Int
    public var inFlight: Int
    public var queueRecords: Int
    public var queueBytes: Int
    public var queueDropped: Int
    /// Age of the oldest unacknowledged record, seconds; nil when the queue is empty.
    public var queueOldestAgeSeconds: Double?
    public var limitW: Double
    public var appliedA: Double
    public var source: String
    public var commOK: Bool
    public var clockSynced: Bool
    /// False while the queue refuses writes after a failed fdatasync (until it recovered).
    public var queueOK: Bool
    /// Failed fdatasyncs of the queue since start.
    public var queueIOErrors: Int

    public init(version: String, startTimeSeconds: Double, devices: [Device], mqttConnected: Bool, published: Int,
                acked: Int, inFlight: Int, queueRecords: Int, queueBytes: Int, queueDropped: Int,
                queueOldestAgeSeconds: Double?, limitW: Double, appliedA: Double, source: String, commOK: Bool,
                clockSynced: Bool, queueOK: Bool = true, queueIOErrors: Int = 0) {
        self.queueOK = queueOK; self.queueIOErrors = queueIOErrors
        self.version = version; self.startTimeSeconds = startTimeSeconds; self.devices = devices
        self.mqttConnected = mqttConnected; self.published = published; self.acked = acked; self.inFlight = inFlight
        self.queueRecords = queueRecords; self.queueBytes = queueBytes; self.queueDropped = queueDropped
        self.queueOldestAgeSeconds = queueOldestAgeSeconds; self.limitW = limitW; self.appliedA = appliedA
        self.source = source; self.commOK = commOK; self.clockSynced = clockSynced
    }

    /// The exposition text. Every metric has HELP and TYPE lines; label values are escaped.
    public func render() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in samples { out += name + (s.labels.isEmpty ? "" : "{\(s.labels)}") + " " + s.value + "\n" }
        }
        let M = MetricsSnapshot.self
        family("gridlet_build_info", "gauge", "Always 1; the version is a label.", [("version=\"\(M.escape(version))\"", "1")])
        family("gridlet_start_time_seconds", "gauge", "Unix time the agent started.", [("", M.number(startTimeSeconds))])
        family("gridlet_device_up", "gauge", "1 when the device's last poll succeeded.",
               devices.map { (M.label($0.name), $0.up ? "1" : "0") })
        family("gridlet_poll_ok_total", "counter", "Successful polls per device.",
               devices.map { (M.label($0.name), String($0.pollsOK)) })
        family("gridlet_poll_errors_total", "counter", "Failed polls per device.",
               devices.map { (M.label($0.name), String($0.pollErrors)) })
        family("gridlet_poll_duration_seconds", "gauge", "Duration of the device's last completed poll.",
               devices.compactMap { d in d.lastPollSeconds.map { (M.label(d.name), M.number($0)) } })
        family("gridlet_mqtt_connected", "gauge", "1 while connected to the broker.", [("", mqttConnected ? "1" : "0")])
        family("gridlet_publish_published_total", "counter", "Queued records handed to the MQTT client since start.",
               [("", String(published))])
        family("gridlet_publish_acked_total", "counter", "Published records the broker acknowledged (PUBACK) since start.",
               [("", String(acked))])
        family("gridlet_publish_inflight", "gauge", "Published records waiting for their PUBACK.", [("", String(inFlight))])
        family("gridlet_queue_records", "gauge", "Records in the disk queue not yet acknowledged.", [("", String(queueRecords))])
        family("gridlet_queue_bytes", "gauge", "Bytes of the queue ring in use.", [("", String(queueBytes))])
        family("gridlet_queue_dropped_total", "counter", "Records dropped because the queue was full, since start.",
               [("", String(queueDropped))])
        family("gridlet_queue_oldest_age_seconds", "gauge", "Age of the oldest unacknowledged record (0 when empty).",
               [("", M.number(queueOldestAgeSeconds ?? 0))])
        family("gridlet_queue_ok", "gauge", "0 while the queue refuses writes after a failed fdatasync.", [("", queueOK ? "1" : "0")])
        family("gridlet_queue_io_errors_total", "counter", "Failed fdatasyncs of the queue file since start (each one gives up the unsynced records).",
               [("", String(queueIOErrors))])
        family("gridlet_control_limit_watts", "gauge", "The site limit the control loop applies.", [("", M.number(limitW))])
        family("gridlet_control_applied_amperes", "gauge", "Sum of the currents written to the chargers.", [("", M.number(appliedA))])
        family("gridlet_control_source", "gauge", "1 for the source of the current limit (label source).",
               [("source=\"\(M.escape(source))\"", "1")])
        family("gridlet_control_comm_ok", "gauge", "1 while communication with the utility is OK (not in fallback).",
               [("", commOK ? "1" : "0")])
        family("gridlet_clock_synchronised", "gauge", "1 when the kernel reports the clock synchronised.",
               [("", clockSynced ? "1" : "0")])
        return out
    }

    static func label(_ device: String) -> String { "device=\"\(escape(device))\"" }

    /// Label value escaping: backslash, double quote and line feed.
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// Prometheus float syntax: integers without a fraction, NaN and +Inf/-Inf spelled out.
    public static func number(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }
}

/// Per-device poll counters, updated on the bus thread when a poll completes and read by the
/// control loop when it writes the metrics file.
final class PollCounters: Sendable {
    let ok = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    /// Microseconds of the last completed poll; -1 before the first.
    let lastDurationUs = Atomic<Int64>(-1)

    func record(ok success: Bool, startedUs: Int64) {
        lastDurationUs.store(max(0, PollCounters.monoUs() - startedUs), ordering: .relaxed)
        if success { ok.add(1, ordering: .relaxed) } else { errors.add(1, ordering: .relaxed) }
    }

    static func monoUs() -> Int64 { SystemClock.monoUs() }
}

/// Writes `state_dir/metrics.prom` at most every `intervalMs` (temporary file + rename, so the
/// textfile collector never reads a half-written file; no fsync: the file is rewritten soon anyway).
final class MetricsFile {
    /// 10 s; the hidden `GRIDLET_TEST_METRICS_INTERVAL_MS` shortens it for tests.
    static let intervalMs: Int64 = getenv("GRIDLET_TEST_METRICS_INTERVAL_MS").flatMap { Int64(String(cString: $0)) } ?? 10_000
    var nextMonoMs: Int64 = 0
    var failed = false

    func writeIfDue(nowMono: Int64, path: String, log: Logger, _ snapshot: () -> MetricsSnapshot) {
        guard nowMono >= nextMonoMs else { return }
        nextMonoMs = nowMono + MetricsFile.intervalMs
        let text = snapshot().render()
        let tmp = path + ".tmp"
        // The errno of the step that failed, read right after it (close and rename would overwrite it).
        var failure: Int32 = 0
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            failure = errno
        } else {
            do {
                try FileDescriptor(rawValue: fd).writeAll(text.utf8)
            } catch {
                failure = error.rawValue
            }
            close(fd)
        }
        if failure == 0, rename(tmp, path) != 0 { failure = errno }
        if failure != 0, !failed { log.warning("cannot write \(path): \(Errno(rawValue: failure))") }
        failed = failure != 0
    }
}

extension Agent {
    /// Called once per control-loop turn; writes the metrics file every 10 s.
    func writeMetricsIfDue(nowMono: Int64, nowWall: Int64) {
        metricsFile.writeIfDue(nowMono: nowMono, path: config.site.stateDir + "/metrics.prom", log: log) {
            let st = queue.stats
            let devices = self.devices.enumerated().map { i, l in
                let us = l.counters.lastDurationUs.load(ordering: .relaxed)
                return MetricsSnapshot.Device(name: l.config.name, up: readings.health[i].ok,
                                              pollsOK: l.counters.ok.load(ordering: .relaxed),
                                              pollErrors: l.counters.errors.load(ordering: .relaxed),
                                              lastPollSeconds: us < 0 ? nil : Double(us) / 1_000_000)
            }
            return MetricsSnapshot(
                version: gridletVersion, startTimeSeconds: Double(startedWallMs) / 1000, devices: devices,
                mqttConnected: pipeline.connected, published: pipeline.published, acked: pipeline.published - pipeline.inFlight,
                inFlight: pipeline.inFlight,
                queueRecords: st.records, queueBytes: st.bytes, queueDropped: st.droppedRecords,
                queueOldestAgeSeconds: st.oldestTimestampMs.map { Double(max(0, nowWall - $0)) / 1000 },
                limitW: requestedW, appliedA: appliedA, source: decision?.source ?? "default",
                commOK: decision?.commOK ?? false, clockSynced: clockSynced, queueOK: st.ok, queueIOErrors: st.ioErrors)
        }
    }
}

/// Hidden test hook: with `GRIDLET_TEST_HANG_AFTER_MS=N` the control loop blocks N ms after
/// start (until SIGTERM/SIGINT), so tests can show that the watchdog keep-alives stop with it.
enum TestHooks {
    static let hangAfterMs: Int64? = getenv("GRIDLET_TEST_HANG_AFTER_MS").flatMap { Int64(String(cString: $0)) }

    static func hangIfAsked(sinceStartMs: Int64, log: Logger) {
        guard let after = hangAfterMs, sinceStartMs >= after else { return }
        log.warning("GRIDLET_TEST_HANG_AFTER_MS: the control loop now blocks (test hook)")
        while !stopRequested.load(ordering: .relaxed) { SystemClock.sleepMs(20) }
    }
}
