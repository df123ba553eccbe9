// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]
let rdma: Set<String> = ["RDMA"]

let package = Package(
    name: "replica",
    products: [
        .library(name: "ReplicaCore", targets: ["ReplicaCore"]),
        .library(name: "ReplicaTransportTCP", targets: ["ReplicaTransportTCP"]),
        .library(name: "ReplicaTransportRDMA", targets: ["ReplicaTransportRDMA"]),
        .library(name: "ReplicaNBD", targets: ["ReplicaNBD"]),
        .library(name: "ReplicaMetrics", targets: ["ReplicaMetrics"]),
        .library(name: "ReplicaSimulation", targets: ["ReplicaSimulation"]),
        // For fuzzing only (the Fuzz/ package and the corpus replay test): not an API.
        .library(name: "ReplicaFuzzTargets", targets: ["ReplicaFuzzTargets"]),
        .executable(name: "replctl", targets: ["replctl"]),
    ],
    traits: [
        .trait(name: "RDMA", description: "InfiniBand / RoCE transport over the system libibverbs (apt: libibverbs-dev)."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
    ],
    targets: [
        .target(name: "CReplicaLinux", cSettings: [.define("_GNU_SOURCE")]),
        // The pure parts: engine, state model, wire codec, meta-data and bitmap values, resync
        // controller. No dependencies at all, so the compiler keeps it sans-I/O (no Foundation,
        // Dispatch, Glibc or C shim can be imported here); EngineBoundaryTests checks its imports.
        .target(name: "ReplicaEngine", swiftSettings: strict),
        .target(
            name: "ReplicaCore",
            dependencies: ["ReplicaEngine", "CReplicaLinux", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        .systemLibrary(name: "CReplicaOpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "CReplicaOpenSSLShims", dependencies: ["CReplicaOpenSSL"]),
        .target(
            name: "ReplicaTransportTCP",
            dependencies: ["ReplicaCore", "CReplicaLinux", "CReplicaOpenSSL", "CReplicaOpenSSLShims", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        .systemLibrary(name: "CReplicaIBVerbs", pkgConfig: "libibverbs", providers: [.apt(["libibverbs-dev"])]),
        .target(
            name: "CReplicaIBVerbsShims",
            dependencies: [.target(name: "CReplicaIBVerbs", condition: .when(traits: rdma))],
            cSettings: [.define("REPLICA_RDMA", .when(traits: rdma))]
        ),
        .target(
            name: "ReplicaTransportRDMA",
            dependencies: [
                "ReplicaCore",
                .target(name: "CReplicaIBVerbs", condition: .when(traits: rdma)),
                .target(name: "CReplicaIBVerbsShims", condition: .when(traits: rdma)),
            ],
            swiftSettings: strict
        ),

        .target(name: "ReplicaSimulation", dependencies: ["ReplicaCore"], swiftSettings: strict),
        .target(name: "ReplicaNBD", dependencies: ["ReplicaCore", "CReplicaLinux", "ReplicaTransportTCP", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // Prometheus metrics (drbd-reactor's names) and the HTTP endpoint that serves them.
        .target(name: "ReplicaMetrics", dependencies: ["ReplicaCore", "ReplicaTransportTCP", "CReplicaLinux", .product(name: "Prometheus", package: "swift-prometheus")],
                swiftSettings: strict),

        // The fuzz targets (Fuzz/ drives them with libFuzzer; FuzzCorpusTests replays the corpus).
        .target(name: "ReplicaFuzzTargets", dependencies: ["ReplicaEngine", "ReplicaCore", "ReplicaNBD", "ReplicaTransportTCP"],
                swiftSettings: strict),

        .executableTarget(
            name: "replctl",
            dependencies: [
                "ReplicaCore", "ReplicaTransportTCP", "ReplicaTransportRDMA", "ReplicaNBD", "ReplicaSimulation", "ReplicaMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "replica-embedded-node",
            dependencies: ["ReplicaCore", "ReplicaTransportTCP"],
            path: "Examples/EmbeddedNode",
            swiftSettings: strict
        ),

        .testTarget(name: "ReplicaCoreTests", dependencies: ["ReplicaEngine", "ReplicaCore"], swiftSettings: strict),
        .testTarget(
            name: "ReplicaTransportTests",
            dependencies: ["ReplicaEngine", "ReplicaCore", "ReplicaTransportTCP", "ReplicaTransportRDMA", "ReplicaNBD", "ReplicaMetrics", "ReplicaFuzzTargets"],
            swiftSettings: strict
        ),
        .testTarget(name: "ReplicaSimulationTests", dependencies: ["ReplicaEngine", "ReplicaCore", "ReplicaSimulation"], swiftSettings: strict),
        .testTarget(name: "ReplctlTests", dependencies: ["ReplicaCore"], exclude: ["Corpus"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
