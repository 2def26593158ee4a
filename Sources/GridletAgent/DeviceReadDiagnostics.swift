import GridletCore
import GridletModbus

extension DeviceRead {
    /// `gridlet read DEVICE [POINT...]`: the daemon's answer when it runs (it owns the bus), else
    /// a read of our own, then the only master on the bus. Either way the same JSON (`json`).
    public static func request(_ device: DeviceConfig, points: [String],
                               configuration loaded: ConfigLoading.Loaded) throws(DiagnosticsError) -> String {
        let socket = SocketPath.resolve(configured: loaded.config.site.socket)
        if case let .success(text) = LocalClient.request("read \(([device.name] + points).joined(separator: " "))", socketPath: socket) {
            return text
        }
        guard let busConfig = loaded.config.bus(named: device.bus), let profile = loaded.profiles[device.profile] else {
            throw DiagnosticsError("device \(device.name) has no bus or profile")
        }
        let bus = ModbusBus(busConfig)
        defer { bus.stop() }
        let reader = DeviceReader(profile: profile, unit: device.unit, deviceName: device.name)
        return json(profile: profile, device: device.name, result: reader.read(on: bus), only: points)
    }
}
