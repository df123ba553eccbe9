#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import ReplicaCore
import ReplicaNBD

/// `replctl daemon`: the node daemon in the foreground (for systemd).
struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "daemon", abstract: "Run this node's daemon in the foreground.")
    @OptionGroup var options: DaemonOptions
    @Option(help: "NBD clients served at once per export; one more is refused (nbdkit's limit filter does the same).")
    var nbdMaxClients: Int = 64
    @Option(help: "NBD requests in flight per client (nbdkit's default thread count).")
    var nbdMaxRequests: Int = 16
    @Option(help: "Serve Prometheus metrics over HTTP at IP:PORT ([IPv6]:PORT), GET /metrics; off by default.")
    var metricsAddress: String?

    func run() throws {
        AllocatorTuning.useSingleArena()
        OpenFileLimit.raiseToHardLimit()
        signal(SIGPIPE, SIG_IGN)
        let daemon = NodeDaemon(runDirectory: options.runDirectory, configPath: DaemonClient.absolute(options.config.config),
                                nodeName: options.config.nodeName, nbdLimits: NBDLimits(clients: nbdMaxClients, requestsPerClient: nbdMaxRequests))
        // SIGTERM and SIGINT end the daemon as `replctl shutdown` does: every resource down
        // (drained, meta-data clean), then exit.
        var handlers: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { daemon.stop() }
            source.resume()
            handlers.append(source)
        }
        defer { for handler in handlers { handler.cancel() } }
        try runReporting {
            if let metricsAddress {
                do {
                    try daemon.serveMetrics(at: try ConfigBuilder.commandLineAddress(metricsAddress, option: "--metrics-address"))
                } catch {
                    throw CommandFailure(message: "\(error)", code: 10)
                }
            }
            do {
                try daemon.serve()
            } catch {
                throw CommandFailure(message: "\(error)", code: 1)
            }
        }
    }
}

/// `replctl up RES`: attach and connect (starting the daemon if none answers).
struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Attach and connect a resource (starts the daemon when needed).")
    @OptionGroup var options: DaemonOptions
    @Option(help: "The node's daemon serves Prometheus metrics over HTTP at IP:PORT ([IPv6]:PORT), GET /metrics.")
    var metricsAddress: String?
    @Argument(help: "RES or all.") var resource: String

    func run() throws {
        if let metricsAddress {
            try runReporting {
                do {
                    _ = try ConfigBuilder.commandLineAddress(metricsAddress, option: "--metrics-address")
                } catch {
                    throw CommandFailure(message: "\(error)", code: 10)
                }
            }
        }
        try DaemonClient.ensureDaemon(options)
        try DaemonClient.run("up", resource, flags: metricsAddress.map { ["metrics-address=\($0)"] } ?? [], options)
    }
}

/// A command that only forwards to the daemon.
protocol ForwardedCommand: ParsableCommand {
    var options: DaemonOptions { get }
    var resource: String { get }
    var commandName: String { get }
    var flags: [String] { get }
}

extension ForwardedCommand {
    /// The daemon command is the command's own name (`replctl invalidate-remote` → "invalidate-remote").
    var commandName: String { Self._commandName }
    var flags: [String] { [] }
    func run() throws { try DaemonClient.run(commandName, resource, flags: flags, options) }
}

/// `replctl attach RES`: attach the disk without connecting (StandAlone); on a Diskless
/// volume, take its disk back (a Primary keeps its connection and is resynced while it serves).
struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach a resource's disk without connecting (starts the daemon when needed).",
        discussion: "On a Diskless volume the disk is taken back: a Secondary reconnects on it; a Primary keeps its connection and NBD clients, and its peer resyncs the disk while it serves.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String

    func run() throws {
        try DaemonClient.ensureDaemon(options)
        try DaemonClient.run("attach", resource, options)
    }
}

struct Detach: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Detach the disk of a StandAlone Secondary resource.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct Down: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Disconnect and detach a resource.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct Primary: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Promote to Primary (--force: this node's data is the truth).")
    @OptionGroup var options: DaemonOptions
    @Flag var force = false
    @Argument var resource: String
    var flags: [String] { force ? ["force"] : [] }
}

struct Secondary: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Demote to Secondary.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct Connect: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Connect to the peer (--discard-my-data: this node is the split-brain victim).")
    @OptionGroup var options: DaemonOptions
    @Flag(name: .customLong("discard-my-data")) var discardMyData = false
    @Argument var resource: String
    var flags: [String] { discardMyData ? ["discard-my-data"] : [] }
}

struct Disconnect: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Disconnect from the peer and stay StandAlone.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct NewCurrentUUID: ForwardedCommand {
    static let configuration = CommandConfiguration(commandName: "new-current-uuid", abstract: "Start a new data generation (--clear-bitmap: skip the initial sync).")
    @OptionGroup var options: DaemonOptions
    @Flag(name: .customLong("clear-bitmap")) var clearBitmap = false
    @Argument var resource: String
    var flags: [String] { clearBitmap ? ["clear-bitmap"] : [] }
}

struct Invalidate: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Declare this node's data bad: a full sync from the peer.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct InvalidateRemote: ForwardedCommand {
    static let configuration = CommandConfiguration(commandName: "invalidate-remote", abstract: "Declare the peer's data bad: a full sync to it.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct Outdate: ForwardedCommand {
    static let configuration = CommandConfiguration(abstract: "Mark this node's data Outdated (refused while connected).")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct PauseSync: ForwardedCommand {
    static let configuration = CommandConfiguration(commandName: "pause-sync", abstract: "Pause a running resync.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct ResumeSync: ForwardedCommand {
    static let configuration = CommandConfiguration(commandName: "resume-sync", abstract: "Resume a paused resync.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct RoleCommand: ForwardedCommand {
    static let configuration = CommandConfiguration(commandName: "role", abstract: "Print the roles, e.g. Primary/Secondary.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

struct CStateCommand: ForwardedCommand {
    static let configuration = CommandConfiguration(commandName: "cstate", abstract: "Print the connection state.")
    @OptionGroup var options: DaemonOptions
    @Argument var resource: String
}

/// `replctl shutdown`: stop this node's daemon (after taking every resource down).
struct Shutdown: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Take every resource down and stop this node's daemon.")
    @OptionGroup var options: DaemonOptions

    func run() throws { try DaemonClient.run("shutdown", nil, options) }
}

/// `replctl events [--now]`: state changes as a stream, in the style of `drbdsetup events2`.
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stream state changes (drbdsetup events2 style); --now prints the current state and exits.")
    @OptionGroup var options: DaemonOptions
    @Flag var now = false

    func run() throws {
        try runReporting {
            guard let fd = UnixSocket.connect(NodeDaemon.socketPath(options.runDirectory)) else {
                throw CommandFailure(message: "no replctl daemon answers in \(options.runDirectory)", code: 1)
            }
            defer { close(fd) }
            let request = ControlRequest(command: "events", flags: now ? ["now"] : [])
            let data = try JSONEncoder.controlLine.encode(request)
            UnixSocket.write(fd, String(decoding: data, as: UTF8.self) + "\n")
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                FileOutput.standardOutput(String(decoding: buffer[0..<n], as: UTF8.self))
            }
        }
    }
}

/// `replctl status [RES] [--proc] [--verbose] [--statistics] [--json]`.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the state: the drbdadm status form, or /proc/drbd's with --proc.")
    @OptionGroup var options: DaemonOptions
    @Flag var proc = false
    @Flag var verbose = false
    @Flag var statistics = false
    @Argument var resource: String = "all"

    func run() throws {
        var flags: [String] = []
        if proc { flags.append("proc") }
        if verbose { flags.append("verbose") }
        if statistics { flags.append("statistics") }
        try DaemonClient.run("status", resource, flags: flags, options)
    }
}
