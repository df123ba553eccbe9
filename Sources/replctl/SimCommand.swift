import ArgumentParser
import Foundation
import ReplicaCore
import ReplicaSimulation
import Synchronization

/// `replctl sim`: runs the deterministic simulator — one seed to replay it with its trace, or
/// a campaign of many seeds on several threads.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim", abstract: "Run the deterministic cluster simulator (the real engine, seeded faults, invariants).")

    @Option(help: "Run this seed (and print its trace).") var seed: UInt64?
    @Option(help: "Run this many seeds, starting at --first.") var seeds: Int = 100
    @Option(help: "First seed of a campaign.") var first: UInt64 = 1
    @Option(help: "Threads for a campaign.") var jobs: Int = 1
    @Option(help: "Replication protocol A, B or C (default: chosen by each seed).") var `protocol`: String?
    @Option(help: "Application operations per run.") var operations: Int = 300
    @Flag(help: "No faults: only the workload.") var noFaults = false
    @Option(help: "on-io-error of the nodes: pass_on, detach or call-local-io-error.") var onIoError: String = "pass_on"
    @Option(help: "Lines of trace printed for a failing or replayed seed.") var trace: Int = 60
    @Option(help: "Trace every local I/O that touches this 4 KiB block (to follow it through a failing seed).") var watchBlock: Int64?
    @Flag(help: "Meta-data write failures as one more fault (a node's meta-data area fails its writes for a while).") var metadataFaults = false

    func validate() throws {
        if let name = `protocol`, !["A", "B", "C"].contains(name) { throw ValidationError("--protocol must be A, B or C, not '\(name)'") }
        guard jobs >= 1, jobs <= 64 else { throw ValidationError("--jobs must be 1 to 64") }
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1") }
        guard OnIOError(rawValue: onIoError) != nil else {
            throw ValidationError("--on-io-error must be pass_on, detach or call-local-io-error, not '\(onIoError)'")
        }
    }

    func options(_ seed: UInt64) -> SimulationOptions {
        var options = SimulationOptions(seed: seed)
        options.wireProtocol = `protocol`
        options.operations = operations
        options.faults = !noFaults
        options.traceLines = trace
        options.watchedBlock = watchBlock
        options.onIOError = OnIOError(rawValue: onIoError) ?? .passOn
        options.metadataFaults = metadataFaults
        return options
    }

    func run() throws {
        if let seed {
            let outcome = try Simulation(options(seed)).run()
            print(outcome.report, terminator: "")
            if outcome.violation != nil { throw ExitCode(1) }
            return
        }
        let started = Date()
        let next = Mutex(first)
        let failures = Mutex<[SimulationOutcome]>([])
        let totals = Mutex((runs: 0, events: 0, writes: 0))
        let last = first &+ UInt64(seeds)
        let done = DispatchGroup()
        for _ in 0..<jobs {
            done.enter()
            let worker = Thread {
                defer { done.leave() }
                while true {
                    let seed: UInt64? = next.withLock { value in
                        guard value < last else { return nil }
                        defer { value += 1 }
                        return value
                    }
                    guard let seed else { return }
                    let outcome: SimulationOutcome
                    do { outcome = try Simulation(options(seed)).run() } catch { continue }
                    totals.withLock { $0.runs += 1; $0.events += outcome.events; $0.writes += outcome.acknowledgedWrites }
                    if outcome.violation != nil { failures.withLock { $0.append(outcome) } }
                }
            }
            worker.start()
        }
        done.wait()
        let elapsed = Date().timeIntervalSince(started)
        let (runs, events, writes) = totals.withLock { ($0.runs, $0.events, $0.writes) }
        let failed = failures.withLock { $0.sorted { $0.seed < $1.seed } }
        print(String(format: "%d seeds (%llu...%llu) in %.1f s, %.0f seeds/s, %d events, %d writes acknowledged, %d violation%@",
                     runs, first, last - 1, elapsed, Double(runs) / max(elapsed, 0.001), events, writes, failed.count, failed.count == 1 ? "" : "s"))
        for outcome in failed.prefix(5) { print("\n" + outcome.report, terminator: "") }
        if !failed.isEmpty {
            print("failing seeds: " + failed.map { String($0.seed) }.joined(separator: " "))
            throw ExitCode(1)
        }
    }
}
