/// Device profiles compiled into the binary (it is static: no resource files). They are YAML
/// texts, so they live beside the parser (read them through `ProfileLibrary`); the core only
/// decodes documents that were already parsed.
public enum BuiltinProfiles {
    public static let sources: [(name: String, yaml: String)] = [
        ("eastron-sdm630", eastronSDM630),
        ("eastron-sdm120", eastronSDM120),
        ("carlo-gavazzi-em24", carloGavazziEM24),
        ("carlo-gavazzi-em340", carloGavazziEM340),
        ("sunspec-meter", sunspecMeter),
        ("vestel-evc04", vestelEVC04),
        ("webasto-next", webastoNext),
        ("alfen-eve", alfenEve),
        ("bender-cc613", benderCC613),
        ("abb-terra-ac", abbTerraAC),
        ("sunspec-der", sunspecDER),
        ("wallbox-quasar", wallboxQuasar),
    ]

    public static var names: [String] { sources.map(\.name) }

    /// The YAML text of a builtin profile.
    public static func yaml(named name: String) -> String? {
        sources.first { $0.name == name }?.yaml
    }

    static let eastronSDM630 = """
        name: eastron-sdm630
        kind: meter
        vendor: Eastron
        model: SDM630
        unit: 1
        transport: rtu
        sources:
          - "volkszaehler/mbmd meters/rs485/sdm.go @ fb8f9c22 (cites Eastron SDM630_MODBUS_Protocol.pdf)"
          - "evcc-io/evcc templates/definition/meter/eastron-sdm72v2_630.yaml @ b29b49e3"
          - "peufeu2/GrugBus grugbus/devices/Eastron_SDM630.csv"
        notes: >-
          RS-485, 9600 8N1 by default, unit 1. All values are float32 input registers (fc 4),
          most significant word first. Energy registers report kWh (scaled to Wh here).
          Not verified on hardware: the sign of the per-phase and total power
          (import positive, export negative per the sources).
        defaults: { table: input, type: float32, word_order: hi_first, verified: false }
        points:
          voltage_l1_v: { address: 0x0000, unit: V }
          voltage_l2_v: { address: 0x0002, unit: V }
          voltage_l3_v: { address: 0x0004, unit: V }
          current_l1_a: { address: 0x0006, unit: A }
          current_l2_a: { address: 0x0008, unit: A }
          current_l3_a: { address: 0x000A, unit: A }
          power_l1_w: { address: 0x000C, unit: W }
          power_l2_w: { address: 0x000E, unit: W }
          power_l3_w: { address: 0x0010, unit: W }
          power_w: { address: 0x0034, unit: W }
          frequency_hz: { address: 0x0046, unit: Hz }
          import_wh: { address: 0x0048, scale: 1000, unit: Wh }
          export_wh: { address: 0x004A, scale: 1000, unit: Wh }
        """

    static let eastronSDM120 = """
        name: eastron-sdm120
        kind: meter
        vendor: Eastron
        model: SDM120
        unit: 1
        transport: rtu
        sources:
          - "volkszaehler/mbmd meters/rs485/sdm120.go"
          - "evcc-io/evcc templates/definition/meter/eastron-sdm120.yaml"
          - "peufeu2/GrugBus grugbus/devices/Eastron_SDM120.csv"
        notes: >-
          Single-phase meter. RS-485, unit 1 by default. float32 input registers (fc 4),
          most significant word first. Energy registers report kWh (scaled to Wh here).
          Not verified on hardware: the sign of power (import positive per the sources).
        defaults: { table: input, type: float32, word_order: hi_first, verified: false }
        points:
          voltage_l1_v: { address: 0x0000, unit: V }
          current_l1_a: { address: 0x0006, unit: A }
          power_w: { address: 0x000C, unit: W }
          frequency_hz: { address: 0x0046, unit: Hz }
          import_wh: { address: 0x0048, scale: 1000, unit: Wh }
          export_wh: { address: 0x004A, scale: 1000, unit: Wh }
        """

    static let vestelEVC04 = """
        name: vestel-evc04
        kind: charger
        vendor: Vestel
        model: EVC04
        unit: 255
        transport: tcp
        sources:
          - "evcc-io/evcc charger/vestel.go"
          - "evcc-io/evcc files/13239564/EVC04_Modbus_TCP_Specification.v1.8.pdf"
          - "public HA integration for Webasto Next (same register family) for 2000/2002"
          - "evcc-io/evcc issue #24874 (1000 = OCPP charge point status per the Vestel Modbus spec: 0 Available ... 7 Unavailable, 8 Faulted)"
        notes: >-
          Modbus TCP port 502, unit 255. Measurements are uint16/uint32 input registers (fc 4),
          control registers are holding registers (fc 6/16). charging_current 0 pauses,
          otherwise at least 6 A. Write alive (6000) = 1 periodically (evcc: every
          failsafe_timeout/4), or the charger falls back to failsafe_current.
          Not verified on hardware: failsafe_current (2000) and failsafe_timeout (2002) come from
          the Webasto Next integration; energy_total unit 0.1 kWh (evcc divides by 10);
          cable_state >= 2 meaning a vehicle is connected; charging_state 1 meaning charging;
          charge_point_state 8 meaning Faulted (the OCPP status list quoted in evcc issue 24874),
          which makes the charger a fault (SafetyDerate).
        defaults: { table: input, type: uint16, word_order: hi_first, verified: false }
        points:
          number_of_phases: { address: 404 }
          charge_point_state: { address: 1000 }
          charging: { address: 1001 }
          cable_state: { address: 1004 }
          current_l1_a: { address: 1008, scale: 0.001, unit: A }
          current_l2_a: { address: 1010, scale: 0.001, unit: A }
          current_l3_a: { address: 1012, scale: 0.001, unit: A }
          voltage_l1_v: { address: 1014, unit: V }
          voltage_l2_v: { address: 1016, unit: V }
          voltage_l3_v: { address: 1018, unit: V }
          power_w: { address: 1020, type: uint32, unit: W }
          import_wh: { address: 1036, type: uint32, scale: 100, unit: Wh }
          session_energy_wh: { address: 1502, type: uint32, unit: Wh }
        control:
          charging_current: { address: 5004, type: uint16 }
          failsafe_current: { address: 2000, type: uint16 }
          failsafe_timeout: { address: 2002, type: uint16 }
          alive: { address: 6000, value: 1 }
          resolution: 1
          fault: { point: charge_point_state, values: { 8: faulted } }
        """
}
