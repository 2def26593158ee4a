// Times one control decision (ControlEngine.advance + decide + ChargerGovernor + EnergyLedger feed, as the
// agent's loop does each turn) and prints the median in ns. Run through bench/decision.sh (release build).
import Glibc
import GridletCore

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

func monoNs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

let n = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100_000 : 100_000
let eventCount = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 20 : 20
guard let bytes = readFile("/usr/share/zoneinfo/America/New_York"),
      let zone = try? TimeZoneRules(name: "America/New_York", tzif: bytes) else {
    print("cannot read /usr/share/zoneinfo/America/New_York"); exit(1)
}
let start: Int64 = 1_811_847_600_000 // 2027-06-01T11:00:00Z
var engine = ControlEngine(settings: ControlSettings(), nowMs: start, seed: 1)
engine.sessionConnected(nowMs: start)
engine.configureSchedules([
    ScheduleConfig(id: "summer-peak", limitW: 0, days: [.mon, .tue, .wed, .thu, .fri], from: "13:00", to: "21:00",
                   seasonFrom: "06-01", seasonTo: "09-30", except: "holidays", optOut: true, primacy: 100),
    ScheduleConfig(id: "night", limitW: 7000, from: "22:00", to: "06:00", primacy: 150),
], holidays: ["holidays": ["2027-05-31", "2027-06-18", "2027-07-05", "2027-09-06"]], zone: zone)
for i in 0..<eventCount {
    _ = engine.handle(.event(DispatchEvent(id: "evt-\(i)", createdMs: start, startMs: start + Int64(i) * 600_000,
                                           durationMs: 3_600_000, limitW: Double(1000 + 100 * i), primacy: 1 + i % 5)), nowMs: start)
}
var governor = ChargerGovernor(minDwellMs: 60_000)
var ledger = EnergyLedger(intervalMs: 900_000)
let inputs = ControlInputs(hardwareMaxW: 22_080, hasSiteMeter: true, siteMeterPowerW: 5000, chargerPowerW: 3000)
var samples = [Int64](repeating: 0, count: n)
var sink = 0.0
var imp = 1_000_000.0
for i in 0..<n {
    let now = start + Int64(i) * 1000 // one decision per second of simulated time
    imp += 1.5
    let t0 = monoNs()
    _ = engine.advance(nowMs: now)
    let d = engine.decide(nowMs: now, inputs: inputs)
    let sp = governor.govern(limitW: d.limitW, phases: 3, voltage: 230, maxCurrent: 32, minCurrent: 6, nowMs: now)
    let recs = ledger.feed(nowMs: now, sample: LedgerSample(importWh: imp, exportWh: 0), source: d.targetSource)
    samples[i] = monoNs() - t0
    sink += sp.amps + Double(recs.count)
}
samples.sort()
print("decisions: \(n) (one per simulated second from 2027-06-01T11:00Z, \(eventCount) events, 2 schedules)")
print("median_ns: \(samples[n / 2])")
print("p99_ns: \(samples[n * 99 / 100])")
print("max_ns: \(samples[n - 1])")
if sink < 0 { print(sink) }
