import GridletAgent
import Testing

let sample = MetricsSnapshot(
    version: "0.1.0", startTimeSeconds: 1_700_000_000.5,
    devices: [.init(name: "meter", up: true, pollsOK: 120, pollErrors: 2, lastPollSeconds: 0.0125),
              .init(name: "ev\"se", up: false, pollsOK: 0, pollErrors: 7, lastPollSeconds: nil)],
    mqttConnected: true, published: 40, acked: 38, inFlight: 2,
    queueRecords: 3, queueBytes: 4096, queueDropped: 0, queueOldestAgeSeconds: 1.5,
    limitW: 4140, appliedA: 6, source: "event:evt-1", commOK: true, clockSynced: false, queueOK: false, queueIOErrors: 1)

@Test func rendersThePrometheusTextFormat() {
    let text = sample.render()
    let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
    #expect(samples == [
        "gridlet_build_info{version=\"0.1.0\"} 1",
        "gridlet_start_time_seconds 1700000000.5",
        "gridlet_device_up{device=\"meter\"} 1",
        "gridlet_device_up{device=\"ev\\\"se\"} 0",
        "gridlet_poll_ok_total{device=\"meter\"} 120",
        "gridlet_poll_ok_total{device=\"ev\\\"se\"} 0",
        "gridlet_poll_errors_total{device=\"meter\"} 2",
        "gridlet_poll_errors_total{device=\"ev\\\"se\"} 7",
        "gridlet_poll_duration_seconds{device=\"meter\"} 0.0125",
        "gridlet_mqtt_connected 1",
        "gridlet_publish_published_total 40",
        "gridlet_publish_acked_total 38",
        "gridlet_publish_inflight 2",
        "gridlet_queue_records 3",
        "gridlet_queue_bytes 4096",
        "gridlet_queue_dropped_total 0",
        "gridlet_queue_oldest_age_seconds 1.5",
        "gridlet_queue_ok 0",
        "gridlet_queue_io_errors_total 1",
        "gridlet_control_limit_watts 4140",
        "gridlet_control_applied_amperes 6",
        "gridlet_control_source{source=\"event:evt-1\"} 1",
        "gridlet_control_comm_ok 1",
        "gridlet_clock_synchronised 0",
    ])
    #expect(text.hasSuffix("\n"))
}

@Test func everyFamilyHasHelpAndTypeBeforeItsSamples() {
    let lines = sample.render().split(separator: "\n").map(String.init)
    var declared: [String: String] = [:]
    for (i, l) in lines.enumerated() where l.hasPrefix("# TYPE ") {
        let parts = l.split(separator: " ")
        declared[String(parts[2])] = String(parts[3])
        #expect(i > 0 && lines[i - 1].hasPrefix("# HELP \(parts[2]) "))
    }
    for l in lines where !l.hasPrefix("#") {
        let name = String(l.prefix { $0 != "{" && $0 != " " })
        let type = declared[name]
        #expect(type != nil, "\(name) has no TYPE line")
        if name.hasSuffix("_total") { #expect(type == "counter") } else { #expect(type == "gauge") }
    }
    #expect(declared.count == 21)
}

@Test func numbersAndLabelEscaping() {
    #expect(MetricsSnapshot.number(3) == "3")
    #expect(MetricsSnapshot.number(-0.25) == "-0.25")
    #expect(MetricsSnapshot.number(.nan) == "NaN")
    #expect(MetricsSnapshot.number(.infinity) == "+Inf")
    #expect(MetricsSnapshot.escape("a\\b\"c\nd") == "a\\\\b\\\"c\\nd")
}
