/// More builtin profiles (see BuiltinProfiles). Facts come from
/// /work/shared/reference/device-register-maps.yaml and the sources each profile names;
/// `verified: false` marks everything not checked on hardware, and each profile's notes say
/// which facts are the least certain.
extension BuiltinProfiles {
    static let carloGavazziEM24 = """
        name: carlo-gavazzi-em24
        kind: meter
        vendor: Carlo Gavazzi
        model: EM24 (RS-485 variant)
        unit: 1
        transport: rtu
        sources:
          - "volkszaehler/mbmd meters/rs485/carlogavazzi-em24.go"
          - "evcc-io/evcc templates/definition/meter/cg-em24.yaml"
        notes: >-
          RS-485, unit 1. Input registers (fc 4). INT32 values are least significant word first
          (lo_first); divisors 10 (V, W, kWh), 1000 (A, PF), 10 (Hz). The EM24 E1 (Ethernet)
          variant has a different map and is not covered. Not verified on hardware: everything;
          export_wh (0x5C) depends on the EM24 'application' setting (evcc dropped it, issue 31143);
          sign of power (import positive per the sources).
        defaults: { table: input, type: int32, word_order: lo_first, verified: false }
        points:
          voltage_l1_v: { address: 0x00, scale: 0.1, unit: V }
          voltage_l2_v: { address: 0x02, scale: 0.1, unit: V }
          voltage_l3_v: { address: 0x04, scale: 0.1, unit: V }
          current_l1_a: { address: 0x0C, scale: 0.001, unit: A }
          current_l2_a: { address: 0x0E, scale: 0.001, unit: A }
          current_l3_a: { address: 0x10, scale: 0.001, unit: A }
          power_l1_w: { address: 0x12, scale: 0.1, unit: W }
          power_l2_w: { address: 0x14, scale: 0.1, unit: W }
          power_l3_w: { address: 0x16, scale: 0.1, unit: W }
          power_w: { address: 0x28, scale: 0.1, unit: W }
          power_factor_l1: { address: 0x32, type: int16, scale: 0.001 }
          power_factor: { address: 0x35, type: int16, scale: 0.001 }
          frequency_hz: { address: 0x37, type: int16, scale: 0.1, unit: Hz }
          import_wh: { address: 0x42, scale: 100, unit: Wh }
          export_wh: { address: 0x5C, scale: 100, unit: Wh }
        """

    static let carloGavazziEM340 = """
        name: carlo-gavazzi-em340
        kind: meter
        vendor: Carlo Gavazzi
        model: EM340
        unit: 1
        transport: rtu
        sources:
          - "volkszaehler/mbmd meters/rs485/carlogavazzi-ex3x0.go"
        notes: >-
          RS-485, unit 1. Input registers (fc 4), INT32 least significant word first (lo_first).
          Only phase 1 voltage/current/power are in the reference map; the other phases are
          not listed there and are left out. Not verified on hardware: everything; sign of power.
        defaults: { table: input, type: int32, word_order: lo_first, verified: false }
        points:
          voltage_l1_v: { address: 0x00, scale: 0.1, unit: V }
          current_l1_a: { address: 0x0C, scale: 0.001, unit: A }
          power_l1_w: { address: 0x12, scale: 0.1, unit: W }
          power_w: { address: 0x28, scale: 0.1, unit: W }
          power_factor: { address: 0x31, type: int16, scale: 0.001 }
          frequency_hz: { address: 0x33, type: int16, scale: 0.1, unit: Hz }
          import_wh: { address: 0x34, scale: 100, unit: Wh }
          export_wh: { address: 0x4E, scale: 100, unit: Wh }
        """

    static let sunspecMeter = """
        name: sunspec-meter
        kind: meter
        vendor: SunSpec
        model: meter models 201-204 / 211-214
        unit: 1
        transport: rtu,tcp
        sources:
          - "sunspec/models json/model_1.json, json/model_203.json @ 7abdf898"
          - "sunspec/pysunspec2 sunspec2/modbus/client.py (base_addr_list [40000, 0, 50000]), sunspec2/mb.py"
        notes: >-
          Discovery: "SunS" at 40000, then 0, then 50000 (holding registers, fc 3); common model 1
          first, then models as (ID, L, body); 0xFFFF ends the list. Meter models 201-204 are int16
          with scale factors (value = raw x 10^SF), 211-214 float32. Not-implemented values
          (0x8000 int16, 0xFFFF uint16, 0 acc32, NaN float, 0x8000 scale factor) read as missing.
          Not verified on hardware: sign of power (SunSpec: positive = import, per the model
          descriptions; check with the meter's display).
        sunspec: { bases: [40000, 0, 50000], models: [203, 213, 201, 211, 202, 212, 204, 214] }
        defaults: { verified: false }
        points:
          current_a: { sunspec: A, unit: A }
          current_l1_a: { sunspec: AphA, unit: A }
          current_l2_a: { sunspec: AphB, unit: A }
          current_l3_a: { sunspec: AphC, unit: A }
          voltage_l1_v: { sunspec: PhVphA, unit: V }
          voltage_l2_v: { sunspec: PhVphB, unit: V }
          voltage_l3_v: { sunspec: PhVphC, unit: V }
          frequency_hz: { sunspec: Hz, unit: Hz }
          power_w: { sunspec: W, unit: W }
          power_l1_w: { sunspec: WphA, unit: W }
          power_l2_w: { sunspec: WphB, unit: W }
          power_l3_w: { sunspec: WphC, unit: W }
          power_factor: { sunspec: PF }
          import_wh: { sunspec: TotWhImp, unit: Wh }
          export_wh: { sunspec: TotWhExp, unit: Wh }
        """

    static let webastoNext = """
        name: webasto-next
        kind: charger
        vendor: Webasto
        model: Next
        unit: 255
        transport: tcp
        sources:
          - "evcc-io/evcc charger/webasto-next.go"
          - "evcc-io/evcc charger/vestel.go (same register family)"
          - "OpenEMS/openems io.openems.edge.evcs.webasto.next EvcsWebastoNextImpl.java (1006 EVSE error code), enums/EvseErrorCode.java @ d3be63cd"
        notes: >-
          Modbus TCP port 502, unit 255. Same register family as the Vestel EVC04, with these
          differences (evcc): total energy 1036 is a holding register in Wh (not 0.1 kWh), and the
          alive register 6000 is written every failsafe_timeout/2 (the agent writes more often,
          which is allowed). Not verified on hardware: everything, in particular failsafe_current
          (2000) and failsafe_timeout (2002), cable_state >= 2 meaning a vehicle is connected,
          charging 1 meaning charging, and the EVSE error code (1006, 0 = no error, texts from
          OpenEMS), which OpenEMS reads with fc 3 while this profile reads the 1000 block with fc 4
          as evcc does. The charge_point_state coding differs between sources (OpenEMS: 7 = error;
          the Vestel spec: 8 = Faulted), so the fault is taken from the error code instead.
        defaults: { table: input, type: uint16, word_order: hi_first, verified: false }
        points:
          number_of_phases: { address: 404 }
          charge_point_state: { address: 1000 }
          charging: { address: 1001 }
          cable_state: { address: 1004 }
          evse_error_code: { address: 1006 }
          current_l1_a: { address: 1008, scale: 0.001, unit: A }
          current_l2_a: { address: 1010, scale: 0.001, unit: A }
          current_l3_a: { address: 1012, scale: 0.001, unit: A }
          voltage_l1_v: { address: 1014, unit: V }
          voltage_l2_v: { address: 1016, unit: V }
          voltage_l3_v: { address: 1018, unit: V }
          power_w: { address: 1020, type: uint32, unit: W }
          import_wh: { address: 1036, table: holding, type: uint32, unit: Wh }
          session_energy_wh: { address: 1502, type: uint32, unit: Wh }
        control:
          charging_current: { address: 5004, type: uint16 }
          failsafe_current: { address: 2000, type: uint16 }
          failsafe_timeout: { address: 2002, type: uint16 }
          alive: { address: 6000, value: 1 }
          resolution: 1
          refresh_fraction: 0.5
          fault:
            point: evse_error_code
            nonzero: true
            values:
              1: "internal board supply voltage error"
              2: "supply voltage error"
              3: "EV communication error"
              4: "over voltage"
              5: "under voltage"
              6: "over current"
              7: "other error"
              8: "ground failure"
              9: "RCD module error"
              10: "over temperature"
              11: "proximity pilot error"
              12: "shutter error"
              13: "three phase check error"
              14: "PWR internal error"
              15: "negative control pilot out of range"
              16: "DC residual current"
        """

    static let alfenEve = """
        name: alfen-eve
        kind: charger
        vendor: Alfen
        model: Eve (NG9xx platform)
        unit: 1
        transport: tcp
        sources:
          - "evcc-io/evcc charger/alfen.go @ b29b49e3"
          - "opernikus-common/openems io.openems.edge.evcs.alfen EvcsAlfenImpl.java"
          - "Alfen 'Implementation of Modbus Slave TCP/IP for Alfen NG9xx platform' v2.3 (2020-10-30)"
        notes: >-
          Modbus TCP port 502; unit id = socket number (1 or 2), 200 = station. Holding registers
          (fc 3), float32 most significant word first, energy float64. Needs the Active Load
          Balancing licence and in ACE Service Installer: Data source = Energy Management System,
          Allow reading/writing, Validity time, Safe current. The setpoint (1210, float32, both
          registers in one fc 16; 0 pauses) is only valid for the 'Validity time' (default 60 s,
          not writable over Modbus): the agent must rewrite it well within that (evcc: every 25 s),
          otherwise and after a reboot the charger uses its safe current (1212, read-only here).
          There is no failsafe current or timeout register to program. The mode 3 state (1201,
          5-register string; F = fault) is not read: profiles have no string type, so this profile
          names no fault point. Not verified on hardware: everything.
        defaults: { table: holding, type: float32, word_order: hi_first, verified: false }
        points:
          voltage_l1_v: { address: 306, unit: V }
          voltage_l2_v: { address: 308, unit: V }
          voltage_l3_v: { address: 310, unit: V }
          current_l1_a: { address: 320, unit: A }
          current_l2_a: { address: 322, unit: A }
          current_l3_a: { address: 324, unit: A }
          power_w: { address: 344, unit: W }
          import_wh: { address: 374, type: float64, unit: Wh }
          availability: { address: 1200, type: uint16 }
          applied_current_a: { address: 1206, unit: A }
          setpoint_valid_remaining_s: { address: 1208, type: uint32, unit: s }
          setpoint_a: { address: 1210, unit: A }
          safe_current_a: { address: 1212, unit: A }
          setpoint_accounted: { address: 1214, type: uint16 }
          number_of_phases: { address: 1215, type: uint16 }
        control:
          charging_current: { address: 1210, type: float32 }
          resolution: 0.1
          setpoint_validity_s: 60
        """

    static let benderCC613 = """
        name: bender-cc613
        kind: charger
        vendor: Bender
        model: CC613 (native Modbus interface)
        unit: 255
        transport: tcp
        sources:
          - "evcc-io/evcc charger/bender.go"
          - "Bender CC613 Configuration Interface Modbus docs (github.com/user-attachments/files/15804177)"
        notes: >-
          Modbus TCP, unit 255, holding registers (fc 3, write fc 6). hems_current_limit (1000, A)
          0 pauses; safe_current (131, A) is used when nothing was written for comm_timeout (132, s).
          The meter registers (power, energy, currents) are not in the reference map and are left
          out: this profile gives control and state only. Not verified on hardware: everything,
          including cp_state coding (A=1 B=2 C=3 D=4 E=5); control pilot state E (5, error: no
          power or a pilot fault in IEC 61851) makes the charger a fault (SafetyDerate).
        defaults: { table: holding, type: uint16, word_order: hi_first, verified: false }
        points:
          cp_state: { address: 122 }
          safe_current_a: { address: 131, unit: A }
          comm_timeout_s: { address: 132, unit: s }
          hw_current_limit_a: { address: 133, unit: A }
          operator_current_limit_a: { address: 134, unit: A }
          setpoint_a: { address: 1000, unit: A }
        control:
          charging_current: { address: 1000, type: uint16 }
          failsafe_current: { address: 131, type: uint16 }
          failsafe_timeout: { address: 132, type: uint16 }
          resolution: 1
          fault: { point: cp_state, values: { 5: "control pilot state E (error)" } }
        """

    static let abbTerraAC = """
        name: abb-terra-ac
        kind: charger
        vendor: ABB
        model: Terra AC
        unit: 1
        transport: rtu,tcp
        sources:
          - "peufeu2/GrugBus grugbus/devices/EVSE_ABB_Terra.csv @ 104a8618 (from ABB Terra AC Modbus communication v1.7)"
          - "not in the shared reference file: everything here is unverified"
        notes: >-
          RS-485 (unit set in TerraConfig) or Modbus TCP. Measurements are uint32 registers from
          0x4000 (GrugBus reads them with fc 4; some integrations use fc 3: unverified). The
          charging current limit 0x4100 is uint32 in mA written with fc 16; below 6 A the session
          pauses. Communication timeout 0x4106 (s, fc 6); on timeout the charger uses the fallback
          current configured in TerraConfig, which cannot be written over Modbus (there is no
          failsafe_current register). error_code (0x4008): 0 = no error, any other value is an
          error listed in ABB's troubleshooting guide, so any non-zero code makes the charger a
          fault (SafetyDerate). Not verified on hardware: everything.
        defaults: { table: input, type: uint32, word_order: hi_first, verified: false }
        points:
          max_current_a: { address: 0x4006, scale: 0.001, unit: A }
          error_code: { address: 0x4008 }
          socket_state: { address: 0x400A }
          charging_state: { address: 0x400C }
          applied_current_a: { address: 0x400E, scale: 0.001, unit: A }
          current_l1_a: { address: 0x4010, scale: 0.001, unit: A }
          current_l2_a: { address: 0x4012, scale: 0.001, unit: A }
          current_l3_a: { address: 0x4014, scale: 0.001, unit: A }
          voltage_l1_v: { address: 0x4016, scale: 0.1, unit: V }
          voltage_l2_v: { address: 0x4018, scale: 0.1, unit: V }
          voltage_l3_v: { address: 0x401A, scale: 0.1, unit: V }
          power_w: { address: 0x401C, unit: W }
          session_energy_wh: { address: 0x401E, unit: Wh }
          comm_timeout_s: { address: 0x4020, type: uint16, unit: s }
        control:
          charging_current: { address: 0x4100, type: uint32, scale: 0.001 }
          failsafe_timeout: { address: 0x4106, type: uint16 }
          resolution: 0.1
          fault: { point: error_code, nonzero: true }
        """
}
