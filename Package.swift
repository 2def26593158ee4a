// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gridlet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gridlet", targets: ["gridlet"]),
    ],
    dependencies: [],
    targets: [
        .systemLibrary(name: "CModbus"),
        .systemLibrary(name: "CMosquitto"),
        .systemLibrary(name: "CYAML"),
        .target(name: "CGridletSys"),
        .target(name: "CCurl"),   // libcurl through dlopen (Sources/CCurl/include/ccurl.h)
        .target(name: "GridletSys", dependencies: ["CGridletSys"]),
        .target(name: "GridletCore"),
        .target(name: "GridletCLI"),   // the command-line parser (replaced swift-argument-parser: docs/benchmarks.md)
        .target(name: "GridletYAML", dependencies: ["CYAML", "GridletCore"]),
        .target(name: "GridletModbus", dependencies: ["CModbus", "CGridletSys", "GridletSys", "GridletCore"]),
        .target(name: "GridletMQTT", dependencies: ["CMosquitto", "GridletSys"]),
        .target(name: "GridletQueue"),
        .target(name: "GridletOpenADR", dependencies: ["CCurl", "GridletCore", "GridletSys"]),
        .target(name: "GridletAgent", dependencies: [
            "GridletCore", "GridletYAML", "GridletModbus", "GridletMQTT", "GridletQueue", "CGridletSys", "GridletSys",
            "GridletOpenADR",
        ]),
        .executableTarget(name: "gridlet-queue-stress", dependencies: ["GridletQueue", "GridletSys"]),
        .executableTarget(name: "gridlet", dependencies: [
            "GridletAgent", "GridletCore", "GridletYAML", "GridletCLI",
        ]),
        .executableTarget(name: "gridlet-bench-decision", dependencies: ["GridletCore"]),
        .testTarget(name: "GridletCoreTests", dependencies: ["GridletCore"]),
        .testTarget(name: "GridletCLITests", dependencies: ["GridletCLI"]),
        .testTarget(name: "GridletYAMLTests", dependencies: ["GridletYAML", "GridletCore"]),
        .testTarget(name: "GridletModbusTests", dependencies: ["GridletModbus", "GridletYAML", "GridletCore"]),
        .testTarget(name: "GridletQueueTests", dependencies: ["GridletQueue"]),
        .testTarget(name: "GridletMQTTTests", dependencies: ["GridletMQTT"]),
        .testTarget(name: "GridletAgentTests", dependencies: [
            "GridletAgent", "GridletCore", "GridletModbus", "GridletMQTT", "GridletQueue", "GridletYAML", "GridletOpenADR",
        ]),
        .testTarget(name: "GridletSysTests", dependencies: ["GridletSys"]),
        .testTarget(name: "GridletOpenADRTests", dependencies: ["GridletOpenADR", "GridletCore"]),
    ],
    swiftLanguageModes: [.v6]
)
