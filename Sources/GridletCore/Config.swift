/// The agent's configuration (SPEC §1), after validation. All durations are in
/// milliseconds, sizes in bytes, powers in W, currents in A.
public struct GridletConfig: Sendable, Equatable {
    public var site: SiteConfig
    public var buses: [BusConfig]
    public var devices: [DeviceConfig]
    public var mqtt: MQTTConfig
    public var telemetry: TelemetryConfig
    public var queue: QueueConfig
    public var control: ControlConfig
    /// Kept as parsed for issue "control engine"; validated for shape only in this version.
    public var schedules: [ScheduleConfig]
    public var holidays: [String: [String]]
    public var log = LogConfig()
    /// `board:` as written (a board name or a board file path); its defaults were applied by the loader.
    public var board: String?
    /// `homeassistant:` (MQTT discovery for Home Assistant; off by default).
    public var homeAssistant = HomeAssistantConfig()
    /// `openadr:`: the OpenADR 3.1 VEN beside the MQTT API (OpenADRConfig.swift); nil = none.
    public var openADR: OpenADRConfig?
    /// False when the file has no `mqtt:` (allowed with `openadr:`): no broker session, no
    /// telemetry; `mqtt` then holds defaults that are not used.
    public var mqttEnabled = true

    public init(site: SiteConfig, buses: [BusConfig], devices: [DeviceConfig], mqtt: MQTTConfig,
                telemetry: TelemetryConfig, queue: QueueConfig, control: ControlConfig,
                schedules: [ScheduleConfig] = [], holidays: [String: [String]] = [:]) {
        self.site = site; self.buses = buses; self.devices = devices; self.mqtt = mqtt
        self.telemetry = telemetry; self.queue = queue; self.control = control
        self.schedules = schedules; self.holidays = holidays
    }

    public func bus(named name: String) -> BusConfig? { buses.first { $0.name == name } }
    public var chargers: [DeviceConfig] { devices.filter { $0.role == .charger } }
    public var siteMeter: DeviceConfig? { devices.first { $0.role == .siteMeter } }
}

public struct SiteConfig: Sendable, Equatable {
    public var id: String
    public var timezone: String            // default "UTC"
    public var stateDir: String            // default "/var/lib/gridlet"
    public var socket: String?             // nil = $RUNTIME_DIRECTORY/gridlet.sock or /run/gridlet/gridlet.sock
    public var nominalVoltage: Double      // default 230, range 50...480
    public var maxImportW: Double?         // optional, > 0
    public var maxExportW: Double?         // optional, >= 0: the most the site may export (bidirectional devices)
    public init(id: String, timezone: String = "UTC", stateDir: String = "/var/lib/gridlet", socket: String? = nil,
                nominalVoltage: Double = 230, maxImportW: Double? = nil) {
        self.id = id; self.timezone = timezone; self.stateDir = stateDir; self.socket = socket
        self.nominalVoltage = nominalVoltage; self.maxImportW = maxImportW
    }
}

public enum Parity: String, Sendable, Equatable { case none = "N", even = "E", odd = "O" }

/// How RS-485 direction (DE/RE) is switched on an `rs485: true` bus.
public enum RS485Mode: String, Sendable, Equatable, CaseIterable {
    /// The kernel's RS-485 mode (TIOCSRS485) when the driver has it, else `rtsUp`.
    case auto
    /// The kernel's RS-485 mode only: the driver switches DE/RE (RTS or a GPIO).
    case kernel
    /// gridlet raises RTS while it sends (libmodbus RTS toggling), for drivers without RS-485 mode.
    case rtsUp = "rts-up"
    /// As `rtsUp` with the line inverted: RTS low while sending.
    case rtsDown = "rts-down"
}

public struct BusConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case tcp(host: String, port: Int)                                   // port default 502
        case rtu(device: String, baud: Int, parity: Parity, dataBits: Int, stopBits: Int, rs485: Bool)
        // rtu defaults: baud 9600, parity N, data_bits 8, stop_bits 1, rs485 false
        /// Modbus RTU frames carried raw over TCP (serial-to-Ethernet adapters in transparent
        /// mode); the adapter owns the serial settings. Port default 502.
        case rtuOverTCP(host: String, port: Int)
    }
    public var name: String
    public var kind: Kind
    public var timeoutMs: Int64    // default 500ms, range 10ms...10s
    public var retries: Int        // default 2, range 0...10
    public var gapMs: Int64        // default 20ms for rtu, 0 for tcp; range 0...1s
    public var rs485Mode: RS485Mode // rtu with rs485: true; default auto
    public var rtsDelayUs: Int?    // user-space RTS toggling: delay before and after sending; nil = one character time
    public init(name: String, kind: Kind, timeoutMs: Int64 = 500, retries: Int = 2, gapMs: Int64 = 0,
                rs485Mode: RS485Mode = .auto, rtsDelayUs: Int? = nil) {
        self.name = name; self.kind = kind; self.timeoutMs = timeoutMs; self.retries = retries; self.gapMs = gapMs
        self.rs485Mode = rs485Mode; self.rtsDelayUs = rtsDelayUs
    }
}

public enum DeviceRole: String, Sendable, Equatable { case siteMeter = "site-meter", charger, meter }

public struct DeviceConfig: Sendable, Equatable {
    public var name: String        // unique, [A-Za-z0-9_-]{1,64}
    public var bus: String         // must name a bus
    public var unit: Int           // 0...255 (0 only for tcp), default 1
    public var profile: String     // built-in profile name or a path to a profile YAML file (contains "/")
    public var role: DeviceRole    // default meter
    public var pollMs: Int64       // default 1s, range 100ms...1h
    public var phases: Int         // charger: 1 or 3, default 3
    public var maxCurrent: Double  // charger: required, 1...80 A
    public var minCurrent: Double  // charger: default 6, 0 < min <= max
    /// Bidirectional devices (profiles with `power:`): the most they discharge (W); nil = the
    /// charge maximum (max_current x phases x V).
    public var maxDischargeW: Double?
    /// Bidirectional devices: the state of charge (%) never discharged through; nil = none.
    public var minSocPct: Double?
    public init(name: String, bus: String, unit: Int = 1, profile: String, role: DeviceRole = .meter, pollMs: Int64 = 1000,
                phases: Int = 3, maxCurrent: Double = 0, minCurrent: Double = 6) {
        self.name = name; self.bus = bus; self.unit = unit; self.profile = profile; self.role = role
        self.pollMs = pollMs; self.phases = phases; self.maxCurrent = maxCurrent; self.minCurrent = minCurrent
    }
}

public struct TLSConfig: Sendable, Equatable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var insecure: Bool      // skip hostname verification; default false
    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, insecure: Bool = false) {
        self.caFile = caFile; self.certFile = certFile; self.keyFile = keyFile; self.insecure = insecure
    }
}

public struct MQTTConfig: Sendable, Equatable {
    public var host: String        // required
    public var port: Int           // default 1883 without tls, 8883 with
    public var clientID: String    // default gridlet-<site.id>
    public var username: String?
    public var passwordFile: String?
    public var tls: TLSConfig?
    public var topicPrefix: String // default "gridlet"; no wildcards (+ #), no leading/trailing '/'
    public var keepaliveMs: Int64  // default 30s, min 5s
    /// MQTT 5 message expiry on telemetry (0 = none), default 24h: a consumer that is away
    /// longer does not get a flood of stale readings from the broker.
    public var messageExpiryMs: Int64 = 86_400_000
    public init(host: String, port: Int = 1883, clientID: String, username: String? = nil, passwordFile: String? = nil,
                tls: TLSConfig? = nil, topicPrefix: String = "gridlet", keepaliveMs: Int64 = 30_000) {
        self.host = host; self.port = port; self.clientID = clientID; self.username = username
        self.passwordFile = passwordFile; self.tls = tls; self.topicPrefix = topicPrefix; self.keepaliveMs = keepaliveMs
    }
    public func root(siteID: String) -> String { "\(topicPrefix)/\(siteID)" }
}

public struct TelemetryConfig: Sendable, Equatable {
    public var intervalMs: Int64        // default 30s, min 100ms
    public var ledgerIntervalMs: Int64  // 1m | 5m | 15m | 30m | 60m, default 15m
    public init(intervalMs: Int64 = 30_000, ledgerIntervalMs: Int64 = 900_000) {
        self.intervalMs = intervalMs; self.ledgerIntervalMs = ledgerIntervalMs
    }
}

public enum QueueSync: String, Sendable, Equatable { case always, batch, none }

public struct QueueConfig: Sendable, Equatable {
    public var maxBytes: Int        // default 64MiB, min 64KiB
    public var sync: QueueSync      // default batch
    public var syncIntervalMs: Int64 // default 250ms, range 1ms...60s
    public var replayRate: Int      // messages/s, default 100, range 1...10000
    public init(maxBytes: Int = 64 << 20, sync: QueueSync = .batch, syncIntervalMs: Int64 = 250, replayRate: Int = 100) {
        self.maxBytes = maxBytes; self.sync = sync; self.syncIntervalMs = syncIntervalMs; self.replayRate = replayRate
    }
}

public struct ControlConfig: Sendable, Equatable {
    public var defaultLimitW: Double?       // null = hardware max; >= 0
    public var commLossTimeoutMs: Int64     // default 120s, min 1s
    public var heartbeatRequired: Bool      // default false
    public var fallbackLimitW: Double       // default 1400, >= 0
    public var deviceFailsafeTimeoutMs: Int64 // default 60s, range 4s...1h (whole seconds)
    public var restoreDelayMs: Int64        // default 30s
    public var restoreRandomMs: Int64       // default 120s
    public var rampWPerS: Double            // default 500, > 0
    public var minDwellMs: Int64            // default 60s
    public var meterStaleAfterMs: Int64     // default 10s
    /// Extra amps above min_current a paused charger needs to resume (default 0: it resumes at
    /// exactly min_current; min_dwell already keeps it from flapping).
    public var resumeHysteresisA: Double = 0
    /// Export allowed while comm is lost (W, default 0: bidirectional devices stop discharging).
    public var fallbackExportW: Double = 0
    public init(defaultLimitW: Double? = nil, commLossTimeoutMs: Int64 = 120_000, heartbeatRequired: Bool = false,
                fallbackLimitW: Double = 1400, deviceFailsafeTimeoutMs: Int64 = 60_000, restoreDelayMs: Int64 = 30_000,
                restoreRandomMs: Int64 = 120_000, rampWPerS: Double = 500, minDwellMs: Int64 = 60_000,
                meterStaleAfterMs: Int64 = 10_000) {
        self.defaultLimitW = defaultLimitW; self.commLossTimeoutMs = commLossTimeoutMs
        self.heartbeatRequired = heartbeatRequired; self.fallbackLimitW = fallbackLimitW
        self.deviceFailsafeTimeoutMs = deviceFailsafeTimeoutMs; self.restoreDelayMs = restoreDelayMs
        self.restoreRandomMs = restoreRandomMs; self.rampWPerS = rampWPerS; self.minDwellMs = minDwellMs
        self.meterStaleAfterMs = meterStaleAfterMs
    }
}

public enum Weekday: String, Sendable, Equatable, CaseIterable { case mon, tue, wed, thu, fri, sat, sun }

public struct ScheduleConfig: Sendable, Equatable {
    public var id: String
    public var limitW: Double
    public var days: [Weekday]              // default all
    public var from: String                 // "HH:MM"
    public var to: String                   // "HH:MM"; to <= from crosses midnight
    public var seasonFrom: String?          // "MM-DD"
    public var seasonTo: String?
    public var except: String?              // a holidays list name
    public var optOut: Bool                 // default false
    public var primacy: Int                 // 65...191, default 100
    public init(id: String, limitW: Double, days: [Weekday] = Weekday.allCases, from: String, to: String,
                seasonFrom: String? = nil, seasonTo: String? = nil, except: String? = nil, optOut: Bool = false, primacy: Int = 100) {
        self.id = id; self.limitW = limitW; self.days = days; self.from = from; self.to = to
        self.seasonFrom = seasonFrom; self.seasonTo = seasonTo; self.except = except; self.optOut = optOut; self.primacy = primacy
    }
}
