// swift-tools-version: 6.1
// libFuzzer drivers for Replica's fuzz targets (Sources/ReplicaFuzzTargets). Built and run by
// `make fuzz` (scripts/fuzz.sh): swift build -c release -Xswiftc -sanitize=fuzzer,address.
import PackageDescription

let package = Package(
    name: "replica-fuzz",
    dependencies: [.package(name: "replica", path: "..")],
    targets: [
        .executableTarget(
            name: "replica-fuzz",
            dependencies: [.product(name: "ReplicaFuzzTargets", package: "replica")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
