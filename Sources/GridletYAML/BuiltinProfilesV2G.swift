/// Built-in profiles of bidirectional devices (vehicle-to-grid chargers, battery inverters): a
/// `power:` section with a signed setpoint, docs/profiles.md "Bidirectional devices".
extension BuiltinProfiles {
    /// SunSpec DER information models 701 (AC measurement), 702 (capacity), 704 (AC controls) and
    /// 713 (storage capacity) at fixed addresses: "SunS" at 40000, model 1 (L 66), then 701, 702,
    /// 704, 713 back to back, as `gridlet simulate` serves them. Offsets from sunspec/models
    /// json/model_70x.json (7abdf898).
    static let sunspecDER = """
        name: sunspec-der
        kind: charger
        vendor: SunSpec
        model: DER 701/702/704/713 (fixed layout)
        unit: 1
        transport: rtu,tcp
        sources:
          - "sunspec/models json/model_701.json, model_702.json, model_704.json, model_713.json @ 7abdf898"
        notes: >-
          A bidirectional DER (V2G charger or battery inverter) with the SunSpec DER models in the
          standard order right after the common model at base 40000: 701 at 40070, 702 at 40225, 704
          at 40277, 713 at 40344 (the layout section). A device that lists other models in between
          needs its own copy of this profile with its addresses (SunSpec discovery of DER models is
          not done yet). SunSpec counts power positive for generation: power_w has scale -1 and the
          setpoint sign is export_positive, so gridlet's + import holds. WSet (int32, W, scaled by
          WSet_SF) is written in watts (WSetMod 1) with WSetEna 1; the reversion time WSetRvrtTms
          is the failsafe and WSetRvrt (programmed with the fallback share, never an export) what
          the device reverts to (WSetEnaRvrt 1). Scale factors are read from the device before use.
          Not verified on hardware.
        defaults: { table: holding, type: uint16, word_order: hi_first, verified: false }
        points:
          inverter_state: { address: 40074 }
          power_w: { address: 40080, type: int16, scale: -1, scale_factor: 40186, unit: W }
          voltage_l1_v: { address: 40086, scale_factor: 40184, unit: V }
          frequency_hz: { address: 40087, type: uint32, scale_factor: 40185, unit: Hz }
          export_wh: { address: 40089, type: uint64, scale_factor: 40190, unit: Wh }
          import_wh: { address: 40093, type: uint64, scale_factor: 40190, unit: Wh }
          max_charge_w: { address: 40235, scale_factor: 40270, unit: W }
          max_discharge_w: { address: 40236, scale_factor: 40270, unit: W }
          setpoint_w: { address: 40301, type: int32, scale: -1, scale_factor: 40332, unit: W }
          reversion_remaining_s: { address: 40310, type: uint32, unit: s }
          capacity_wh: { address: 40346, scale_factor: 40351, unit: Wh }
          soc_pct: { address: 40348, scale_factor: 40352, unit: "%" }
        power:
          setpoint: { address: 40301, type: int32, scale_factor: 40332 }     # 704 WSet
          sign: export_positive
          reversion_timeout: { address: 40308, type: uint32 }                # 704 WSetRvrtTms
          reversion_setpoint: { address: 40303, type: int32, scale_factor: 40332 }   # 704 WSetRvrt
          setup:
            - { address: 40300, value: 1 }    # WSetMod: watts
            - { address: 40307, value: 1 }    # WSetEnaRvrt: stay enabled at WSetRvrt after the reversion time
            - { address: 40299, value: 1 }    # WSetEna
        layout:
          40000: 0x5375
          40001: 0x6E53
          40002: 1
          40003: 66
          40070: 701
          40071: 153
          40183: -2       # 701 A_SF
          40184: -1       # 701 V_SF
          40185: -2       # 701 Hz_SF
          40186: 0        # 701 W_SF
          40190: -2       # 701 TotWh_SF: energies in 0.01 Wh
          40225: 702
          40226: 50
          40270: 0        # 702 W_SF
          40277: 704
          40278: 65
          40331: 0        # 704 WMaxLimPct_SF
          40332: 1        # 704 WSet_SF: the register holds W / 10
          40344: 713
          40345: 7
          40351: 0        # 713 WH_SF
          40352: -1       # 713 Pct_SF: SoC in 0.1 %
          40353: 0xFFFF
          40354: 0
        """

    /// Wallbox Quasar (1), the bidirectional DC charger of the V2G Liberty project.
    static let wallboxQuasar = """
        name: wallbox-quasar
        kind: charger
        vendor: Wallbox
        model: Quasar
        unit: 1
        transport: tcp
        sources:
          - "V2G-liberty/addon-v2g-liberty v2g-liberty/rootfs/root/appdaemon/apps/v2g_liberty/evs/wallbox_quasar_1_client.py (register map provided by Wallbox 'as is')"
        notes: >-
          Modbus TCP. Single-phase DC charger, +/- 7.4 kW. The charger follows a signed power
          setpoint (260, int16, W, + charge, - discharge) once control is remote (81 = 1),
          autostart is off (82 = 0), the setpoint type is power (83 = 1) and it was started (257 = 1);
          with no Modbus message for the idle timeout (88, s) it stops (dis)charging by itself and
          control returns to the user. State 537: 0 no car, 1 charging, 4 paused, 7 error, 11
          discharging. The SoC (538) reads 0 while no car is connected or nothing flows. No energy
          counters are known, so the ledger integrates power (estimated). Not verified on hardware
          (public only through the V2G Liberty project).
        defaults: { table: holding, type: uint16, word_order: hi_first, verified: false }
        points:
          control_mode: { address: 81 }
          setpoint_w: { address: 260, type: int16, unit: W }
          max_power_w: { address: 514, type: int16, unit: W }
          power_w: { address: 526, type: int16, unit: W }
          charger_state: { address: 537 }
          soc_pct: { address: 538, unit: "%" }
          error_code: { address: 539 }
        power:
          setpoint: { address: 260, type: int16 }
          sign: import_positive
          reversion_timeout: { address: 88 }
          setup:
            - { address: 81, value: 1 }     # control: remote
            - { address: 82, value: 0 }     # autostart on connect: off
            - { address: 83, value: 1 }     # setpoint type: power (W)
            - { address: 257, value: 1 }    # action: start (dis)charging
        """
}
