import ReplicaCore

/// What one simulated run does.
public struct SimulationOptions: Sendable {
    /// The seed: it decides every choice of the run.
    public var seed: UInt64
    /// "A", "B" or "C"; nil: chosen by the seed.
    public var wireProtocol: String?
    /// Application operations issued on the Primary.
    public var operations = 300
    /// Inject faults (link cuts, crashes, restarts, failover).
    public var faults = true
    /// Data area of each disk.
    public var diskBytes: Int64 = 8 << 20
    /// Lines of trace kept for a report.
    public var traceLines = 60
    /// `on-io-error` of both nodes. `pass_on` keeps the disks (the regression seeds were found
    /// with it); with `detach` a failing disk is let go, and the simulated administrator
    /// attaches it again once it works (a Primary after stepping down).
    public var onIOError: OnIOError = .passOn
    /// Meta-data write failures as one more fault: for a while, writes to one node's meta-data
    /// area fail (reads work), so its superblock, bitmap and activity-log writes fail and the
    /// node lets its disk go, to be attached again once the area works. Chosen by a stream of
    /// its own, so a seed's other choices are those it makes without them.
    public var metadataFaults = false
    /// A 4 KiB block whose every local I/O, on either node, goes into the trace (submitted
    /// and completed, with the node's bitmap bit), to follow one block through a failing run.
    public var watchedBlock: Int64?

    /// Options for `seed`, with the defaults.
    public init(seed: UInt64) { self.seed = seed }

    /// The `replctl sim` arguments that run this seed again with these options.
    public var replayCommand: String {
        var words = ["replctl sim --seed \(seed)"]
        if let wireProtocol { words.append("--protocol \(wireProtocol)") }
        if operations != 300 { words.append("--operations \(operations)") }
        if !faults { words.append("--no-faults") }
        if onIOError != .passOn { words.append("--on-io-error \(onIOError.rawValue)") }
        if metadataFaults { words.append("--metadata-faults") }
        return words.joined(separator: " ")
    }
}

/// The result of one run.
public struct SimulationOutcome: Sendable {
    /// The seed.
    public var seed: UInt64
    /// The protocol used.
    public var wireProtocol: String
    /// Nil when every invariant held; else what broke.
    public var violation: String?
    /// The faults injected, in order, with their virtual times.
    public var faults: [String]
    /// The last events before the end (or the violation).
    public var trace: [String]
    /// Events processed, application writes acknowledged, virtual milliseconds.
    public var events = 0, acknowledgedWrites = 0, virtualMilliseconds: UInt64 = 0
    /// The command that replays this run.
    public var replayCommand = ""

    /// A readable report: the seed, the faults and the trace.
    public var report: String {
        var out = "seed \(seed) protocol \(wireProtocol): " + (violation.map { "VIOLATION: \($0)" } ?? "ok")
        out += " (\(events) events, \(acknowledgedWrites) writes acknowledged, \(virtualMilliseconds) ms virtual)\n"
        out += "faults:\n" + (faults.isEmpty ? "  none\n" : faults.map { "  \($0)\n" }.joined())
        out += "last events:\n" + trace.map { "  \($0)\n" }.joined()
        out += "replay: \(replayCommand)\n"
        return out
    }
}
