import Glibc
import GridletCore
import GridletModbus
import GridletYAML

/// The embedded default: a simulated SDM630 site meter and Vestel EVC04 charger served by
/// this process, and a broker on 127.0.0.1. `gridlet run --demo` uses it.
public enum Demo {
    public static func config(mqttPort: Int, meterPort: Int, chargerPort: Int, stateDir: String) -> String {
        """
        site:
          id: demo
          timezone: UTC
          state_dir: \(stateDir)
          socket: \(stateDir)/gridlet.sock
          nominal_voltage: 230
          max_import_w: 20000
        buses:
          - name: meter-bus
            kind: tcp
            host: 127.0.0.1
            port: \(meterPort)
            timeout: 500ms
          - name: charger-lan
            kind: tcp
            host: 127.0.0.1
            port: \(chargerPort)
            timeout: 500ms
        devices:
          - name: meter
            bus: meter-bus
            unit: 1
            profile: eastron-sdm630
            role: site-meter
            poll: 1s
          - name: evse
            bus: charger-lan
            unit: 255
            profile: vestel-evc04
            role: charger
            phases: 3
            max_current: 16
            min_current: 6
            poll: 1s
        mqtt:
          host: 127.0.0.1
          port: \(mqttPort)
          topic_prefix: gridlet
        telemetry:
          interval: 5s
        queue:
          max_bytes: 4MiB
        control:
          comm_loss_timeout: 30s
          fallback_limit_w: 4140
          restore_delay: 5s
          restore_random: 5s
          ramp_w_per_s: 1000
          min_dwell: 10s
        homeassistant:
          enabled: true
        """
    }

    /// The demo's two simulated devices on free loopback ports, and the configuration that
    /// polls them. Stop it when the agent returns.
    public final class Site {
        public let meterPort: Int
        public let chargerPort: Int
        public let loaded: ConfigLoading.Loaded
        private let simulators: [ModbusSimulator]

        /// Creates `stateDir`, starts the simulators (charger writes are logged to
        /// `stateDir/charger-writes.jsonl`) and loads the configuration; errors pass through as they are.
        public init(stateDir: String, mqttPort: Int) throws {
            meterPort = freePort()
            chargerPort = freePort()
            try StateFile.makeDirectories(stateDir)
            simulators = try Demo.startSimulators(meterPort: meterPort, chargerPort: chargerPort,
                                                  writeLog: stateDir + "/charger-writes.jsonl")
            loaded = try ConfigLoading.load(text: Demo.config(mqttPort: mqttPort, meterPort: meterPort, chargerPort: chargerPort,
                                                              stateDir: stateDir), file: "demo")
        }

        public func stop() { for s in simulators { s.stop() } }
    }

    /// Starts the two simulators (values change over time; writes are logged to `writeLog`).
    static func startSimulators(meterPort: Int, chargerPort: Int, writeLog: String?) throws -> [ModbusSimulator] {
        guard let meter = try ProfileLibrary.builtin(named: "eastron-sdm630"),
              let charger = try ProfileLibrary.builtin(named: "vestel-evc04") else {
            throw AgentError("built-in demo profiles missing")
        }
        let sims = [ModbusSimulator(profile: meter, port: meterPort), ModbusSimulator(profile: charger, port: chargerPort, writeLog: writeLog)]
        for s in sims { try s.start() }
        return sims
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it), or 0.
private func freePort() -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(s, sa, len) == 0 ? getsockname(s, sa, &len) : -1
        }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}
