// swift-tools-version:6.0
import PackageDescription

// Release builds of gridlet (docs/benchmarks.md, "Lean on a Pi"): -Osize (328 KB smaller than -O,
// same steady memory and poll rate, measured); every C function of ours in a section of its own
// (Swift already emits one section per function on ELF), so that --gc-sections drops what nothing
// calls and lld can lay out the functions of linker/hot-code.order (what the running daemon
// executes, steady state first; bench/hot-code.sh regenerates it) together at the start of the
// text: the kernel maps code in 64 KiB fault-around blocks, so a hot set spread over the whole text
// costs megabytes of resident pages. --no-export-dynamic: SwiftPM's static-stdlib link exports
// every public symbol, which also keeps them all alive through --gc-sections. Debug builds and the
// tests are unaffected; bench/lib.sh and scripts/build-deb build with these settings as they are.
let releaseSwift: [SwiftSetting] = [.unsafeFlags(["-Osize"], .when(configuration: .release))]
let sectionPerFunctionC: [CSetting] = [.unsafeFlags(["-ffunction-sections"], .when(configuration: .release))]
let leanLink: [LinkerSetting] = [.unsafeFlags([
    "-use-ld=lld", "-Xlinker", "--no-export-dynamic",
    "-Xlinker", "--symbol-ordering-file=" + Context.packageDirectory + "/linker/hot-code.order",
    "-Xlinker", "--no-warn-symbol-ordering",
], .when(configuration: .release))]

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
        .target(name: "CGridletSys", cSettings: sectionPerFunctionC),
        .target(name: "CCurl", cSettings: sectionPerFunctionC),   // libcurl through dlopen (Sources/CCurl/include/ccurl.h)
        .target(name: "GridletSys", dependencies: ["CGridletSys"], swiftSettings: releaseSwift),
        .target(name: "GridletCore", swiftSettings: releaseSwift),
        // The command-line parser (replaced swift-argument-parser: docs/benchmarks.md).
        .target(name: "GridletCLI", swiftSettings: releaseSwift),
        .target(name: "GridletYAML", dependencies: ["CYAML", "GridletCore"], swiftSettings: releaseSwift),
        // -O, not -Osize: the read path runs for every transaction (8 KB more, bench/poll-rate.sh).
        .target(name: "GridletModbus", dependencies: ["CModbus", "CGridletSys", "GridletSys", "GridletCore"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .release))]),
        .target(name: "GridletMQTT", dependencies: ["CMosquitto", "GridletSys"], swiftSettings: releaseSwift),
        .target(name: "GridletQueue", dependencies: ["GridletSys"], swiftSettings: releaseSwift),
        .target(name: "GridletOpenADR", dependencies: ["CCurl", "GridletCore", "GridletSys"], swiftSettings: releaseSwift),
        .target(name: "GridletAgent", dependencies: [
            "GridletCore", "GridletYAML", "GridletModbus", "GridletMQTT", "GridletQueue", "CGridletSys", "GridletSys",
            "GridletOpenADR",
        ], swiftSettings: releaseSwift),
        .executableTarget(name: "gridlet-queue-stress", dependencies: ["GridletQueue", "GridletSys"]),
        .executableTarget(name: "gridlet", dependencies: [
            "GridletAgent", "GridletCore", "GridletYAML", "GridletCLI",
        ], swiftSettings: releaseSwift, linkerSettings: leanLink),
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
