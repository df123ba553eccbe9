import ArgumentParser
import ReplicaCore
import ReplicaTransportRDMA
import ReplicaTransportTCP

/// `replctl state-check`: applies DRBD's state rules to a state and says whether it is allowed.
struct StateCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state-check",
        abstract: "Check a state (or a promotion) against DRBD's state rules.",
        discussion: "Example: replctl state-check --role Primary --conn StandAlone --disk Inconsistent")

    @Option(help: "Local role: Primary, Secondary.") var role: String = "Secondary"
    @Option(name: .customLong("peer-role"), help: "Peer role: Primary, Secondary, Unknown.") var peerRole: String = "Unknown"
    @Option(help: "Connection state, e.g. Connected, StandAlone, SyncSource.") var conn: String = "StandAlone"
    @Option(help: "Local disk state, e.g. UpToDate, Inconsistent.") var disk: String = "UpToDate"
    @Option(name: .customLong("peer-disk"), help: "Peer disk state, e.g. DUnknown.") var peerDisk: String = "DUnknown"
    @Flag(name: .customLong("allow-two-primaries")) var allowTwoPrimaries = false
    @Option(help: "fencing policy") var fencing: String = "dont-care"
    @Flag(name: .customLong("device-open"), help: "The device is held open.") var deviceOpen = false
    @Flag(help: "Promote from the given state (with the other fields as the current state).") var promote = false
    @Flag(help: "With --promote: primary --force.") var force = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try runReporting {
            func parse<T>(_ text: String, _ what: String, _ make: (String) -> T?) throws -> T {
                guard let value = make(text) else { throw CommandFailure(message: "unknown \(what) '\(text)'", code: 1) }
                return value
            }
            let roleNames: (String) -> Role? = { name in Role.allCases.first { $0.description == name } }
            var state = ResourceState(
                role: try parse(role, "role", roleNames), peerRole: try parse(peerRole, "role", roleNames),
                connection: try parse(conn, "connection state", ConnectionState.init(name:)),
                disk: try parse(disk, "disk state", DiskState.init(name:)), peerDisk: try parse(peerDisk, "disk state", DiskState.init(name:)))
            var context = StateRuleContext()
            context.allowTwoPrimaries = allowTwoPrimaries
            context.fencing = fencing
            context.deviceOpen = deviceOpen
            var refusal: StateChangeError?
            if promote {
                switch StateRules.promote(state, force: force, context) {
                case .success(let next): state = next
                case .failure(let error): refusal = error
                }
            } else {
                refusal = StateRules.validate(state, context)
            }
            if json {
                let verdict = refusal.map { "\"refused\":true,\"code\":\($0.code),\"message\":\"\($0)\",\"rule\":\"\($0.rule)\"" } ?? "\"refused\":false"
                FileOutput.standardOutput("{\"state\":\"\(state)\",\(verdict)}\n")
            } else if let refusal {
                FileOutput.standardOutput("\(state): refused (\(refusal.code)): \(refusal) [rule: \(refusal.rule)]\n")
            } else {
                FileOutput.standardOutput("\(state): allowed\n")
            }
            if refusal != nil { throw ExitCode(ExitCodes.stateRefused) }
        }
    }
}

/// `replctl uuid-compare LOCAL PEER`: the connect-time UUID comparison.
struct UUIDCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uuid-compare",
        abstract: "Compare two UUID sets (C:B:H1:H2 in hex, as get-gi prints) as the connect handshake does.")

    @Argument(help: "This node's UUIDs.") var local: String
    @Argument(help: "The peer's UUIDs.") var peer: String
    @Option(name: .customLong("local-role")) var localRole: String = "Secondary"
    @Option(name: .customLong("peer-role")) var peerRole: String = "Secondary"
    @Flag(name: .customLong("local-crashed")) var localCrashed = false
    @Flag(name: .customLong("peer-crashed")) var peerCrashed = false

    func run() throws {
        try runReporting {
            func uuids(_ text: String) throws -> GenerationUUIDs {
                let values = text.split(separator: ":").prefix(4).map { UInt64($0, radix: 16) }
                guard values.count == 4, values.allSatisfy({ $0 != nil }) else {
                    throw CommandFailure(message: "'\(text)' is not C:B:H1:H2 in hex", code: 1)
                }
                return GenerationUUIDs(current: values[0]!, bitmap: values[1]!, historyStart: values[2]!, historyEnd: values[3]!)
            }
            var input = UUIDHandshakeInput(local: try uuids(local), peer: try uuids(peer))
            input.localCrashedPrimary = localCrashed
            input.peerCrashedPrimary = peerCrashed
            input.localRole = localRole == "Primary" ? .primary : .secondary
            input.peerRole = peerRole == "Primary" ? .primary : .secondary
            let result = UUIDComparison.compare(input)
            let meaning: String
            switch result.handshake {
            case 0: meaning = "no resync"
            case 1: meaning = "become SyncSource (bitmap-based resync)"
            case 2: meaning = "become SyncSource (full sync)"
            case -1: meaning = "become SyncTarget (bitmap-based resync)"
            case -2: meaning = "become SyncTarget (full sync)"
            case 100, -100: meaning = "split brain\(result.handshake == 100 ? " (auto-recoverable)" : "")"
            case -1000: meaning = "unrelated data"
            default: meaning = "needs a newer protocol"
            }
            FileOutput.standardOutput("uuid_compare()=\(result.handshake) by rule \(result.rule): \(meaning)\n")
        }
    }
}

/// `replctl version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print versions and build features.")

    func run() throws {
        let crc = CRC32C.hardwareAccelerated ? "hardware" : "software"
        let rdma = RDMASupport.isCompiledIn ? "built in (devices: \(RDMASupport.deviceNames().joined(separator: ", ")))" : "not built (enable the RDMA trait)"
        FileOutput.standardOutput("replctl 0.1.0\nTLS: \(TLSLibrary.version)\nRDMA: \(rdma)\nCRC32C: \(crc)\n")
    }
}
