#if canImport(Glibc)
import Glibc
#endif
import ReplicaFuzzTargets

/// The target libFuzzer runs: `REPLICA_FUZZ_TARGET` names it (frames, engine,
/// authentication, nbd, config).
nonisolated(unsafe) private var selected: (@Sendable ([UInt8]) -> Void)?

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> Int32 {
    let name = getenv("REPLICA_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTargets.all.first(where: { $0.name == name }) else {
        print("set REPLICA_FUZZ_TARGET to one of: \(FuzzTargets.all.map(\.name).joined(separator: ", "))")
        exit(2)
    }
    signal(SIGPIPE, SIG_IGN)
    selected = target.run
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    selected?(input)
    return 0
}

/// libFuzzer's driver, for a program with its own `main` (SwiftPM names an executable's entry
/// `replica_fuzz_main` and makes it `main`).
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("replica_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments, testOneInput)
}
