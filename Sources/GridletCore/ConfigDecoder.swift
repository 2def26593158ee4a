/// Decoding and validation of the agent configuration (SPEC §1) from a parsed `YAMLNode`.
/// Pure Swift: no file access, no C. Every error names the key path and the line, and
/// unknown keys are rejected everywhere. docs/configuration.md documents every key.
extension GridletConfig {
    /// Decodes and validates a configuration document.
    /// - Parameters:
    ///   - root: the document root (a mapping).
    ///   - file: the file name, copied into errors.
    ///   - profileExists: whether a built-in device profile of that name exists. Not called for
    ///     profile values containing "/" (a profile file path, checked by the caller).
    public static func decode(_ root: YAMLNode, file: String? = nil,
                              profileExists: (String) -> Bool) throws(YAMLError) -> GridletConfig {
        let d = ConfigDecoder(file: file)
        return try d.decode(root, profileExists: profileExists)
    }
}

/// Valid `buses[].baud` values.
private let standardBaudRates = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400]
/// Valid `telemetry.ledger_interval` values, in milliseconds.
private let ledgerIntervalsMs: [Int64] = [60_000, 300_000, 900_000, 1_800_000, 3_600_000]

struct ConfigDecoder {
    let file: String?

    static let topKeys = ["site", "buses", "devices", "mqtt", "telemetry", "queue", "control", "schedules", "holidays", "log", "board",
                          "homeassistant", "openadr"]
    static let siteKeys = ["id", "timezone", "state_dir", "socket", "nominal_voltage", "max_import_w", "max_export_w"]
    static let rtuOnlyKeys = ["device", "baud", "parity", "data_bits", "stop_bits", "rs485", "rs485_mode", "rts_delay_us"]
    static let tcpOnlyKeys = ["host", "port"]
    static let busKeys = ["name", "kind", "timeout", "retries", "gap"] + rtuOnlyKeys + tcpOnlyKeys
    static let deviceKeys = ["name", "bus", "unit", "profile", "role", "poll", "phases", "max_current", "min_current",
                             "max_discharge_w", "min_soc_pct"]
    static let mqttKeys = ["host", "port", "client_id", "username", "password_file", "tls", "topic_prefix", "keepalive",
                           "message_expiry"]
    static let tlsKeys = ["ca_file", "cert_file", "key_file", "insecure"]
    static let telemetryKeys = ["interval", "ledger_interval"]
    static let queueKeys = ["max_bytes", "sync", "sync_interval", "replay_rate"]
    static let controlKeys = ["default_limit_w", "comm_loss_timeout", "heartbeat_required", "fallback_limit_w",
                              "device_failsafe_timeout", "restore_delay", "restore_random", "ramp_w_per_s",
                              "min_dwell", "meter_stale_after", "resume_hysteresis_a", "fallback_export_w"]
    static let scheduleKeys = ["id", "limit_w", "days", "from", "to", "season", "except", "opt_out", "primacy"]
    static let seasonKeys = ["from", "to"]

    // MARK: - Document

    func decode(_ root: YAMLNode, profileExists: (String) -> Bool) throws(YAMLError) -> GridletConfig {
        if case .scalar = root.value, !root.isNull {
            throw YAMLError(path: "", line: root.line, message: "expected a mapping of configuration sections", file: file)
        }
        var top = try YAMLMap(root, path: "", file: file)
        try checkKeys(top, Self.topKeys)

        guard var siteMap = try top.map("site") else { throw sectionMissing(top, "site") }
        let site = try decodeSite(&siteMap)

        guard let busNodes = try top.sequence("buses") else { throw sectionMissing(top, "buses") }
        if busNodes.isEmpty { throw top.error("buses", "at least one bus is required") }
        var buses: [BusConfig] = []
        var busNameLines: [String: Int] = [:]
        for (i, n) in busNodes.enumerated() {
            var m = try YAMLMap(n, path: "buses[\(i)]", file: file)
            let bus = try decodeBus(&m)
            if let first = busNameLines[bus.name] {
                throw m.error("name", "duplicate bus name '\(bus.name)' (first defined at line \(first)); bus names must be unique")
            }
            busNameLines[bus.name] = lineOf(m, "name")
            buses.append(bus)
        }

        guard let deviceNodes = try top.sequence("devices") else { throw sectionMissing(top, "devices") }
        if deviceNodes.isEmpty { throw top.error("devices", "at least one device is required") }
        var devices: [DeviceConfig] = []
        var deviceNameLines: [String: Int] = [:]
        var siteMeterName: String?
        for (i, n) in deviceNodes.enumerated() {
            var m = try YAMLMap(n, path: "devices[\(i)]", file: file)
            let dev = try decodeDevice(&m, buses: buses, profileExists: profileExists)
            if let first = deviceNameLines[dev.name] {
                throw m.error("name", "duplicate device name '\(dev.name)' (first defined at line \(first)); device names must be unique")
            }
            deviceNameLines[dev.name] = lineOf(m, "name")
            if dev.role == .siteMeter {
                if let other = siteMeterName {
                    throw m.error("role", "only one device can be the site-meter; '\(other)' already is")
                }
                siteMeterName = dev.name
            }
            devices.append(dev)
        }

        // mqtt: may be left out when openadr: is there (docs/openadr.md); it then holds defaults.
        var mqtt = MQTTConfig(host: "", clientID: "gridlet-\(site.id)")
        let mqttEnabled = top.has("mqtt") || !top.has("openadr")
        if mqttEnabled {
            guard var mqttMap = try top.map("mqtt") else { throw sectionMissing(top, "mqtt") }
            mqtt = try decodeMQTT(&mqttMap, siteID: site.id)
        }

        var telemetry = TelemetryConfig()
        if var m = try top.map("telemetry") { telemetry = try decodeTelemetry(&m) }
        var queue = QueueConfig()
        if var m = try top.map("queue") { queue = try decodeQueue(&m) }
        var control = ControlConfig()
        if var m = try top.map("control") { control = try decodeControl(&m) }

        var holidays: [String: [String]] = [:]
        if var m = try top.map("holidays") { holidays = try decodeHolidays(&m) }

        var schedules: [ScheduleConfig] = []
        if let nodes = try top.sequence("schedules") {
            var idLines: [String: Int] = [:]
            for (i, n) in nodes.enumerated() {
                var m = try YAMLMap(n, path: "schedules[\(i)]", file: file)
                let s = try decodeSchedule(&m, holidays: holidays)
                if let first = idLines[s.id] {
                    throw m.error("id", "duplicate schedule id '\(s.id)' (first defined at line \(first)); schedule ids must be unique")
                }
                idLines[s.id] = lineOf(m, "id")
                schedules.append(s)
            }
        }
        var log = LogConfig()
        if var m = try top.map("log") {
            try checkKeys(m, ["level"])
            if let l = try m.string("level") {
                guard let v = LogConfig.Level(rawValue: l) else {
                    throw m.error("level", "must be one of \(LogConfig.Level.allCases.map(\.rawValue).joined(separator: ", ")), got '\(l)'")
                }
                log.level = v
            }
            try m.finish()
        }
        let board = try top.string("board")   // applied before decoding (GridletYAML BoardDefaults)
        var homeAssistant = HomeAssistantConfig()
        if var m = try top.map("homeassistant") { homeAssistant = try decodeHomeAssistant(&m) }
        var openADR: OpenADRConfig?
        if var m = try top.map("openadr") { openADR = try decodeOpenADR(&m, siteID: site.id) }   // OpenADRConfig.swift
        try top.finish()
        var config = GridletConfig(site: site, buses: buses, devices: devices, mqtt: mqtt, telemetry: telemetry,
                                   queue: queue, control: control, schedules: schedules, holidays: holidays)
        config.log = log
        config.board = board
        config.homeAssistant = homeAssistant
        config.openADR = openADR
        config.mqttEnabled = mqttEnabled
        return config
    }

    // MARK: - Sections

    func decodeSite(_ m: inout YAMLMap) throws(YAMLError) -> SiteConfig {
        try checkKeys(m, Self.siteKeys)
        let id = try m.requiredString("id")
        try checkIdentifier(m, "id", id, what: "site id")
        var site = SiteConfig(id: id)
        if let tz = try m.string("timezone") {
            guard isTimezoneShape(tz) else {
                throw m.error("timezone", "expected an IANA time zone name such as UTC or Europe/Berlin, got '\(tz)'")
            }
            site.timezone = tz
        }
        if let dir = try absolutePath(&m, "state_dir") { site.stateDir = dir }
        site.socket = try absolutePath(&m, "socket")
        if let v = try m.double("nominal_voltage", in: 50...480) { site.nominalVoltage = v }
        site.maxImportW = try positive(&m, "max_import_w")
        site.maxExportW = try nonNegative(&m, "max_export_w")
        try m.finish()
        return site
    }

    func decodeBus(_ m: inout YAMLMap) throws(YAMLError) -> BusConfig {
        try checkKeys(m, Self.busKeys)
        let name = try m.requiredString("name")
        try checkIdentifier(m, "name", name, what: "bus name")
        let kindName = try m.requiredString("kind")
        let kind: BusConfig.Kind
        var rs485Mode = RS485Mode.auto
        var rtsDelayUs: Int?
        switch kindName {
        case "tcp", "rtu-over-tcp":
            for k in Self.rtuOnlyKeys where m.has(k) {
                let hint = kindName == "rtu-over-tcp" ? "; the serial settings are made in the adapter" : ""
                throw m.error(k, "applies to rtu buses only (this bus has kind: \(kindName))\(hint)")
            }
            let host = try m.requiredString("host")
            if host.isEmpty || host.contains(where: { $0 == " " || $0 == "/" }) {
                throw m.error("host", "expected a host name or IP address, got '\(host)'")
            }
            let port = try m.int("port", in: 1...65535) ?? 502
            kind = kindName == "tcp" ? .tcp(host: host, port: port) : .rtuOverTCP(host: host, port: port)
        case "rtu":
            for k in Self.tcpOnlyKeys where m.has(k) {
                // RTU framing over TCP (cheap serial-to-Ethernet adapters) has its own kind.
                throw m.error(k, "applies to tcp buses only (this bus has kind: rtu). For an RS-485-to-Ethernet adapter that "
                    + "forwards raw RTU frames over TCP use kind: rtu-over-tcp with host and port; for one in Modbus TCP "
                    + "mode, kind: tcp")
            }
            guard let device = try absolutePath(&m, "device") else { throw m.missing("device") }
            let baud = try m.int("baud") ?? 9600
            if !standardBaudRates.contains(baud) {
                throw m.error("baud", "must be one of \(standardBaudRates.map(String.init).joined(separator: ", ")), got \(baud)")
            }
            var parity = Parity.none
            if let p = try m.string("parity") {
                guard let v = Parity(rawValue: p) else { throw m.error("parity", "must be one of N, E, O, got '\(p)'") }
                parity = v
            }
            let dataBits = try m.int("data_bits", in: 5...8) ?? 8
            let stopBits = try m.int("stop_bits") ?? 1
            if stopBits != 1 && stopBits != 2 { throw m.error("stop_bits", "must be 1 or 2, got \(stopBits)") }
            let rs485 = try m.bool("rs485") ?? false
            kind = .rtu(device: device, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits, rs485: rs485)
            if let mode = try m.string("rs485_mode") {
                guard let v = RS485Mode(rawValue: mode) else {
                    throw m.error("rs485_mode", "must be one of \(RS485Mode.allCases.map(\.rawValue).joined(separator: ", ")), got '\(mode)'")
                }
                if !rs485 { throw m.error("rs485_mode", "applies with rs485: true only (this bus has no RS-485 direction control)") }
                rs485Mode = v
            }
            if m.has("rts_delay_us") {
                let d = try m.int("rts_delay_us", in: 0...100_000)
                if !rs485 { throw m.error("rts_delay_us", "applies with rs485: true only (this bus has no RS-485 direction control)") }
                if rs485Mode == .kernel {
                    throw m.error("rts_delay_us", "applies to user-space RTS toggling (rs485_mode auto, rts-up or rts-down), not rs485_mode: kernel; "
                        + "kernel delays are set in the device tree (rs485-rts-delay)")
                }
                rtsDelayUs = d
            }
        default:
            throw m.error("kind", "must be one of rtu, tcp, rtu-over-tcp, got '\(kindName)'")
        }
        var bus = BusConfig(name: name, kind: kind, rs485Mode: rs485Mode, rtsDelayUs: rtsDelayUs)
        if let t = try m.durationMs("timeout", min: 10, max: 10_000) { bus.timeoutMs = t }
        if let r = try m.int("retries", in: 0...10) { bus.retries = r }
        if case .tcp = kind {} else { bus.gapMs = 20 }
        if let g = try m.durationMs("gap", min: 0, max: 1000) { bus.gapMs = g }
        try m.finish()
        return bus
    }

    func decodeDevice(_ m: inout YAMLMap, buses: [BusConfig], profileExists: (String) -> Bool) throws(YAMLError) -> DeviceConfig {
        try checkKeys(m, Self.deviceKeys)
        let name = try m.requiredString("name")
        try checkIdentifier(m, "name", name, what: "device name")
        let busName = try m.requiredString("bus")
        guard let bus = buses.first(where: { $0.name == busName }) else {
            throw m.error("bus", "no bus named '\(busName)'; defined buses: \(buses.map(\.name).joined(separator: ", "))")
        }
        var isTCP = false
        if case .tcp = bus.kind { isTCP = true }
        var unit = 1
        if let u = try m.int("unit") {
            let range = isTCP ? 0...255 : 1...247
            guard range.contains(u) else {
                throw m.error("unit", "must be between \(range.lowerBound) and \(range.upperBound) for \(isTCP ? "tcp" : "rtu") buses, got \(u)")
            }
            unit = u
        }
        let profile = try m.requiredString("profile")
        if profile.isEmpty { throw m.error("profile", "expected a profile name or a path to a profile file") }
        if !profile.contains("/") && !profileExists(profile) {
            throw m.error("profile", "unknown profile '\(profile)'; use a built-in profile name (see `gridlet profiles`) or a path to a profile YAML file")
        }
        var role = DeviceRole.meter
        if let r = try m.string("role") {
            guard let v = DeviceRole(rawValue: r) else {
                throw m.error("role", "must be one of site-meter, charger, meter, got '\(r)'")
            }
            role = v
        }
        var dev = DeviceConfig(name: name, bus: busName, unit: unit, profile: profile, role: role)
        if let p = try m.durationMs("poll", min: 100, max: 3_600_000) { dev.pollMs = p }
        if role == .charger {
            if let p = try m.int("phases") {
                guard p == 1 || p == 3 else { throw m.error("phases", "must be 1 or 3, got \(p)") }
                dev.phases = p
            }
            guard let maxA = try m.double("max_current", in: 1...80) else {
                throw YAMLError(path: m.childPath("max_current"), line: m.node.line,
                                message: "required for chargers (the charger's maximum current per phase in A, 1 to 80)", file: file)
            }
            dev.maxCurrent = maxA
            if let minA = try m.double("min_current") {
                guard minA > 0 else { throw m.error("min_current", "must be greater than 0, got \(YAMLScalar.format(minA))") }
                guard minA <= maxA else {
                    throw m.error("min_current", "must not exceed max_current (\(YAMLScalar.format(maxA))), got \(YAMLScalar.format(minA))")
                }
                dev.minCurrent = minA
            } else {
                dev.minCurrent = Swift.min(6, maxA)
            }
            dev.maxDischargeW = try nonNegative(&m, "max_discharge_w")
            dev.minSocPct = try m.double("min_soc_pct", in: 0...100)
        } else {
            for k in ["phases", "max_current", "min_current", "max_discharge_w", "min_soc_pct"] where m.has(k) {
                throw m.error(k, "applies to chargers only (this device has role: \(role.rawValue))")
            }
        }
        try m.finish()
        return dev
    }

    func decodeMQTT(_ m: inout YAMLMap, siteID: String) throws(YAMLError) -> MQTTConfig {
        try checkKeys(m, Self.mqttKeys)
        let host = try m.requiredString("host")
        if host.isEmpty || host.contains(where: { $0 == " " || $0 == "/" }) {
            throw m.error("host", "expected a host name or IP address, got '\(host)'")
        }
        var tls: TLSConfig?
        if m.has("tls") {
            if var t = try m.map("tls") {
                try checkKeys(t, Self.tlsKeys)
                var c = TLSConfig()
                c.caFile = try absolutePath(&t, "ca_file")
                c.certFile = try absolutePath(&t, "cert_file")
                c.keyFile = try absolutePath(&t, "key_file")
                if c.certFile != nil && c.keyFile == nil {
                    throw t.error("cert_file", "cert_file and key_file go together: key_file is missing")
                }
                if c.keyFile != nil && c.certFile == nil {
                    throw t.error("key_file", "cert_file and key_file go together: cert_file is missing")
                }
                c.insecure = try t.bool("insecure") ?? false
                try t.finish()
                tls = c
            }
        }
        let port = try m.int("port", in: 1...65535) ?? (tls == nil ? 1883 : 8883)
        let clientID = try m.string("client_id") ?? "gridlet-\(siteID)"
        if clientID.isEmpty || clientID.count > 128 {
            throw m.error("client_id", "must be 1 to 128 characters long, got \(clientID.count)")
        }
        var c = MQTTConfig(host: host, port: port, clientID: clientID, tls: tls)
        if let u = try m.string("username") {
            if u.isEmpty { throw m.error("username", "must not be empty; omit the key for no username") }
            c.username = u
        }
        c.passwordFile = try absolutePath(&m, "password_file")
        if let p = try m.string("topic_prefix") {
            if p.isEmpty || p.contains("+") || p.contains("#") || p.split(separator: "/", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
                throw m.error("topic_prefix", "must be non-empty MQTT topic levels without '+' or '#' and without empty levels (no leading, trailing or double '/'), got '\(p)'")
            }
            c.topicPrefix = p
        }
        if let k = try m.durationMs("keepalive", min: 5000, max: 65_535_000) {
            if k % 1000 != 0 { throw m.error("keepalive", "must be whole seconds, got \(YAMLScalar.formatDuration(k))") }
            c.keepaliveMs = k
        }
        if let e = try m.durationMs("message_expiry", min: 0, max: 4_294_967_000) {
            if e % 1000 != 0 { throw m.error("message_expiry", "must be whole seconds, got \(YAMLScalar.formatDuration(e))") }
            c.messageExpiryMs = e
        }
        try m.finish()
        return c
    }

    func decodeTelemetry(_ m: inout YAMLMap) throws(YAMLError) -> TelemetryConfig {
        try checkKeys(m, Self.telemetryKeys)
        var t = TelemetryConfig()
        if let v = try m.durationMs("interval", min: 100, max: 86_400_000) { t.intervalMs = v }
        if let v = try m.durationMs("ledger_interval") {
            guard ledgerIntervalsMs.contains(v) else {
                throw m.error("ledger_interval", "must be one of 1m, 5m, 15m, 30m, 60m, got \(YAMLScalar.formatDuration(v))")
            }
            t.ledgerIntervalMs = v
        }
        try m.finish()
        return t
    }

    func decodeQueue(_ m: inout YAMLMap) throws(YAMLError) -> QueueConfig {
        try checkKeys(m, Self.queueKeys)
        var q = QueueConfig()
        if let v = try m.sizeBytes("max_bytes", min: 64 << 10) { q.maxBytes = v }
        if let s = try m.string("sync") {
            guard let v = QueueSync(rawValue: s) else { throw m.error("sync", "must be one of batch, always, none, got '\(s)'") }
            q.sync = v
        }
        if let v = try m.durationMs("sync_interval", min: 1, max: 60_000) { q.syncIntervalMs = v }
        if let v = try m.int("replay_rate", in: 1...1_000_000) { q.replayRate = v }
        try m.finish()
        return q
    }

    func decodeControl(_ m: inout YAMLMap) throws(YAMLError) -> ControlConfig {
        try checkKeys(m, Self.controlKeys)
        var c = ControlConfig()
        c.defaultLimitW = try nonNegative(&m, "default_limit_w")
        if let v = try m.durationMs("comm_loss_timeout", min: 1000, max: 86_400_000) { c.commLossTimeoutMs = v }
        if let v = try m.bool("heartbeat_required") { c.heartbeatRequired = v }
        if let v = try nonNegative(&m, "fallback_limit_w") { c.fallbackLimitW = v }
        if let v = try m.durationMs("device_failsafe_timeout", min: 4000, max: 3_600_000) {
            if v % 1000 != 0 { throw m.error("device_failsafe_timeout", "must be whole seconds, got \(YAMLScalar.formatDuration(v))") }
            c.deviceFailsafeTimeoutMs = v
        }
        if let v = try m.durationMs("restore_delay", min: 0, max: 3_600_000) { c.restoreDelayMs = v }
        if let v = try m.durationMs("restore_random", min: 0, max: 3_600_000) { c.restoreRandomMs = v }
        if let v = try positive(&m, "ramp_w_per_s") { c.rampWPerS = v }
        if let v = try m.durationMs("min_dwell", min: 0, max: 3_600_000) { c.minDwellMs = v }
        if let v = try m.durationMs("meter_stale_after", min: 1000, max: 3_600_000) { c.meterStaleAfterMs = v }
        if let v = try m.double("resume_hysteresis_a", in: 0...10) { c.resumeHysteresisA = v }
        if let v = try nonNegative(&m, "fallback_export_w") { c.fallbackExportW = v }
        try m.finish()
        return c
    }

    func decodeHolidays(_ m: inout YAMLMap) throws(YAMLError) -> [String: [String]] {
        var lists: [String: [String]] = [:]
        for key in m.keys {
            try checkIdentifier(m, key, key, what: "holiday list name")
            var dates: [String] = []
            let listPath = m.childPath(key)
            for (i, n) in (try m.sequence(key) ?? []).enumerated() {
                let path = "\(listPath)[\(i)]"
                guard case let .scalar(s, _) = n.value, isDate(s) else {
                    throw YAMLError(path: path, line: n.line, message: "expected a valid date YYYY-MM-DD, got \(describe(n))", file: file)
                }
                dates.append(s)
            }
            lists[key] = dates
        }
        try m.finish()
        return lists
    }

    func decodeSchedule(_ m: inout YAMLMap, holidays: [String: [String]]) throws(YAMLError) -> ScheduleConfig {
        try checkKeys(m, Self.scheduleKeys)
        let id = try m.requiredString("id")
        try checkIdentifier(m, "id", id, what: "schedule id")
        guard let limit = try nonNegative(&m, "limit_w") else { throw m.missing("limit_w") }
        var days = Weekday.allCases
        if let nodes = try m.sequence("days") {
            if nodes.isEmpty { throw m.error("days", "list at least one day (mon, tue, wed, thu, fri, sat, sun), or omit the key for every day") }
            days = []
            for (i, n) in nodes.enumerated() {
                let path = "\(m.childPath("days"))[\(i)]"
                guard case let .scalar(s, _) = n.value, let d = Weekday(rawValue: s) else {
                    throw YAMLError(path: path, line: n.line, message: "must be one of mon, tue, wed, thu, fri, sat, sun, got \(describe(n))", file: file)
                }
                if days.contains(d) { throw YAMLError(path: path, line: n.line, message: "'\(s)' is listed twice", file: file) }
                days.append(d)
            }
        }
        guard let from = try m.string("from") else { throw m.missing("from") }
        if !isTime(from, allow24: false) { throw m.error("from", "expected a time HH:MM between 00:00 and 23:59, got '\(from)'") }
        guard let to = try m.string("to") else { throw m.missing("to") }
        if !isTime(to, allow24: true) { throw m.error("to", "expected a time HH:MM between 00:00 and 24:00, got '\(to)'") }
        var s = ScheduleConfig(id: id, limitW: limit, days: days, from: from, to: to)
        if var season = try m.map("season") {
            try checkKeys(season, Self.seasonKeys)
            guard let sf = try season.string("from") else { throw season.missing("from") }
            if !isMonthDay(sf) { throw season.error("from", "expected a month and day MM-DD such as 06-01, got '\(sf)'") }
            guard let st = try season.string("to") else { throw season.missing("to") }
            if !isMonthDay(st) { throw season.error("to", "expected a month and day MM-DD such as 09-30, got '\(st)'") }
            try season.finish()
            s.seasonFrom = sf
            s.seasonTo = st
        }
        if let e = try m.string("except") {
            guard holidays[e] != nil else {
                let known = holidays.keys.sorted()
                throw m.error("except", "no holiday list named '\(e)' under holidays:"
                              + (known.isEmpty ? " (none defined)" : "; defined lists: \(known.joined(separator: ", "))"))
            }
            s.except = e
        }
        if let v = try m.bool("opt_out") { s.optOut = v }
        if let v = try m.int("primacy", in: 65...191) { s.primacy = v }
        try m.finish()
        return s
    }

    // MARK: - Helpers

    func sectionMissing(_ top: YAMLMap, _ key: String) -> YAMLError {
        if top.has(key) { return top.error(key, "required section is empty") }
        return YAMLError(path: key, line: top.node.line, message: "required section is missing", file: file)
    }

    func lineOf(_ m: YAMLMap, _ key: String) -> Int {
        if case let .mapping(pairs) = m.node.value, let p = pairs.first(where: { $0.key == key }) { return p.value.line }
        return m.node.line
    }

    /// Rejects keys outside `allowed` up front, so a misspelt key is reported as such (with a
    /// suggestion) rather than as the required key it was meant to be.
    func checkKeys(_ m: YAMLMap, _ allowed: [String]) throws(YAMLError) {
        guard case let .mapping(pairs) = m.node.value else { return }
        for p in pairs where !allowed.contains(p.key) {
            let best = allowed.map { (k: $0, d: editDistance($0, p.key)) }.min { $0.d < $1.d }
            let hint: String
            if let best, best.d <= Swift.max(2, p.key.count / 3) {
                hint = "; did you mean '\(best.k)'?"
            } else {
                hint = "; valid keys: \(allowed.joined(separator: ", "))"
            }
            throw YAMLError(path: m.childPath(p.key), line: p.keyLine, message: "unknown key\(hint)", file: file)
        }
    }

    func checkIdentifier(_ m: YAMLMap, _ key: String, _ value: String, what: String) throws(YAMLError) {
        let ok = !value.isEmpty && value.utf8.count <= 64 && value.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-"
        }
        if !ok {
            throw m.error(key, "\(what) must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-', got '\(value)'")
        }
    }

    func absolutePath(_ m: inout YAMLMap, _ key: String) throws(YAMLError) -> String? {
        guard let s = try m.string(key) else { return nil }
        guard s.hasPrefix("/") else { throw m.error(key, "must be an absolute path (starting with '/'), got '\(s)'") }
        return s
    }

    func positive(_ m: inout YAMLMap, _ key: String) throws(YAMLError) -> Double? {
        guard let v = try m.double(key) else { return nil }
        guard v > 0 else { throw m.error(key, "must be greater than 0, got \(YAMLScalar.format(v))") }
        return v
    }

    func nonNegative(_ m: inout YAMLMap, _ key: String) throws(YAMLError) -> Double? {
        guard let v = try m.double(key) else { return nil }
        guard v >= 0 else { throw m.error(key, "must be 0 or more, got \(YAMLScalar.format(v))") }
        return v
    }

    func describe(_ n: YAMLNode) -> String {
        switch n.value {
        case let .scalar(s, _): return "'\(s)'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

// MARK: - Shape checks

private func isTimezoneShape(_ s: String) -> Bool {
    guard !s.isEmpty, s.utf8.count <= 255, !s.hasPrefix("/"), !s.contains("..") else { return false }
    return s.unicodeScalars.allSatisfy {
        ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9")
            || $0 == "_" || $0 == "-" || $0 == "+" || $0 == "/"
    }
}

/// Fixed-width decimal digits, or nil.
private func digits(_ s: Substring, count: Int) -> Int? {
    guard s.utf8.count == count, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    return Int(s)
}

private func daysIn(month: Int, leapYear: Bool) -> Int {
    switch month {
    case 2: return leapYear ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

/// "HH:MM", 00:00...23:59, plus 24:00 when `allow24`.
private func isTime(_ s: String, allow24: Bool) -> Bool {
    let parts = s.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, let h = digits(parts[0], count: 2), let m = digits(parts[1], count: 2) else { return false }
    if allow24 && h == 24 && m == 0 { return true }
    return h <= 23 && m <= 59
}

/// "MM-DD", a valid day of some year (02-29 allowed).
private func isMonthDay(_ s: String) -> Bool {
    let parts = s.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 2, let m = digits(parts[0], count: 2), let d = digits(parts[1], count: 2) else { return false }
    return (1...12).contains(m) && d >= 1 && d <= daysIn(month: m, leapYear: true)
}

/// "YYYY-MM-DD", a valid calendar date.
private func isDate(_ s: String) -> Bool {
    let parts = s.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 3, let y = digits(parts[0], count: 4), let m = digits(parts[1], count: 2),
          let d = digits(parts[2], count: 2) else { return false }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
    return (1...12).contains(m) && d >= 1 && d <= daysIn(month: m, leapYear: leap)
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    var cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}
