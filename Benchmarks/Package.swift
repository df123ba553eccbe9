// swift-tools-version: 6.1
// Benchmarks live in their own package so that library users never build benchmark tooling.
import PackageDescription

let package = Package(
    name: "replica-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ReplicaCoreBenchmarks",
            dependencies: [
                .product(name: "ReplicaCore", package: "main"),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/ReplicaCoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "replication-bench",
            dependencies: [
                .product(name: "ReplicaCore", package: "main"),
                .product(name: "ReplicaTransportTCP", package: "main"),
            ],
            path: "Sources/ReplicationBench"
        ),
    ],
    swiftLanguageModes: [.v6]
)
