#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import ReplicaCore

/// `replctl wait-connect RES`: block until connected.
struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait-connect", abstract: "Wait until the resource is connected.",
                                                    discussion: "Without --timeout, waits as the resource's startup section says: degr-wfc-timeout when this node was a Primary without its peer before, outdated-wfc-timeout when its peer was outdated, else wfc-timeout (0: for ever).")
    @OptionGroup var options: DaemonOptions
    @Option(help: "Give up after this many seconds (0 = wait forever; default: the startup section's timeouts).") var timeout: Double?
    @Argument var resource: String

    func run() throws { try waitFor(sync: false, options: options, resource: resource, timeout: timeout) }
}

/// `replctl wait-sync RES`: block until connected and in sync.
struct WaitSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait-sync", abstract: "Wait until the resource is connected and in sync (progress bar on a terminal).")
    @OptionGroup var options: DaemonOptions
    @Option(help: "Give up after this many seconds (0 = wait forever; default: the startup section's timeouts).") var timeout: Double?
    @Argument var resource: String

    func run() throws { try waitFor(sync: true, options: options, resource: resource, timeout: timeout) }
}

/// Waits until `resource` is connected (or, with `sync`, connected and in sync): woken by the
/// daemon's events stream at every state change (no polling); on a terminal, a resync's
/// progress is redrawn every second.
func waitFor(sync: Bool, options: DaemonOptions, resource: String, timeout: Double?) throws {
    try runReporting {
        let query = ControlRequest(command: "status", resource: resource, flags: ["json"])
        func status() throws -> StatusSummary {
            guard let response = DaemonClient.send(query, runDirectory: options.runDirectory) else {
                throw CommandFailure(message: "no replctl daemon answers in \(options.runDirectory)", code: 1)
            }
            guard let status = StatusSummary(json: response.output, resource: resource) else {
                throw CommandFailure(message: "'\(resource)' is not up on this node", code: 10)
            }
            return status
        }
        let seconds = try timeout ?? startupTimeout(resource, options: options, status: try status())
        let deadline = seconds > 0 ? Date().addingTimeInterval(seconds) : nil
        guard let events = UnixSocket.connect(NodeDaemon.socketPath(options.runDirectory)) else {
            throw CommandFailure(message: "no replctl daemon answers in \(options.runDirectory)", code: 1)
        }
        defer { close(events) }
        let request = try JSONEncoder.controlLine.encode(ControlRequest(command: "events"))
        UnixSocket.write(events, String(decoding: request, as: UTF8.self) + "\n")
        let terminal = isatty(1) == 1
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let current = try status()
            if sync ? current.inSync : current.connection >= .connected {
                if terminal, sync { FileOutput.standardOutput("\r\u{1B}[2K") }
                return
            }
            let resyncing = terminal && sync && current.connection.isResync
            if resyncing {
                FileOutput.standardOutput(String(format: "\r\u{1B}[2K%@: %@ %.1f%% in sync", resource, "\(current.connection)", current.percentInSync))
            }
            var wait: Int32 = -1
            if let deadline {
                let left = deadline.timeIntervalSinceNow
                guard left > 0 else { break }
                wait = Int32(min(left * 1000 + 1, 3_600_000))
            }
            if resyncing { wait = wait < 0 ? 1000 : min(wait, 1000) }
            var poller = pollfd(fd: events, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, wait)
            if ready > 0 {
                let n = buffer.withUnsafeMutableBytes { read(events, $0.baseAddress, $0.count) }
                if n <= 0 { throw CommandFailure(message: "the replctl daemon in \(options.runDirectory) went away", code: 1) }
            }
        }
        throw CommandFailure(message: "timed out waiting for \(resource) to \(sync ? "sync" : "connect")", code: 5)
    }
}

/// The wait the resource's `startup { }` section asks for (DRBD's init-script rule):
/// `degr-wfc-timeout` when a volume was a Primary without its peer when it was attached,
/// `outdated-wfc-timeout` when its peer was known outdated, else `wfc-timeout`; 0 for ever.
func startupTimeout(_ name: String, options: DaemonOptions, status: StatusSummary) throws -> Double {
    let configuration = try options.config.load()
    guard let resource = configuration.resource(named: name) else { return 0 }
    let startup = (configuration.common?.startup ?? []) + resource.sections.startup
    func seconds(_ option: String) -> Double? {
        startup.last { $0.name == option }.flatMap { OptionValueParser.number($0.value, unitBytes: 1) }.map(Double.init)
    }
    if status.degradedAtAttach, let degraded = seconds("degr-wfc-timeout") { return degraded }
    if status.peerOutdatedAtAttach, let outdated = seconds("outdated-wfc-timeout") { return outdated }
    return seconds("wfc-timeout") ?? 0
}

/// The fields of `status --json` that `wait-connect` and `wait-sync` look at.
struct StatusSummary {
    var connection: ConnectionState
    var disk: DiskState
    var peerDisk: DiskState
    var percentInSync: Double
    /// A volume was a Primary without its peer when attached (`degr-wfc-timeout` applies).
    var degradedAtAttach: Bool
    /// A volume's peer was known outdated when attached (`outdated-wfc-timeout` applies).
    var peerOutdatedAtAttach: Bool

    init?(json: String, resource: String) {
        guard let objects = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]],
              let object = objects.first(where: { $0["name"] as? String == resource }),
              let device = (object["devices"] as? [[String: Any]])?.first,
              let connection = (object["connections"] as? [[String: Any]])?.first,
              let peer = (connection["peer_devices"] as? [[String: Any]])?.first,
              let cstate = (connection["connection-state"] as? String).flatMap(ConnectionState.init(name:)),
              let disk = (device["disk-state"] as? String).flatMap(DiskState.init(name:)),
              let peerDisk = (peer["peer-disk-state"] as? String).flatMap(DiskState.init(name:)) else { return nil }
        self.connection = cstate
        self.disk = disk
        self.peerDisk = peerDisk
        percentInSync = peer["percent-in-sync"] as? Double ?? 0
        let devices = object["devices"] as? [[String: Any]] ?? []
        degradedAtAttach = devices.contains { $0["degraded-at-attach"] as? Bool == true }
        peerOutdatedAtAttach = devices.contains { $0["peer-outdated-at-attach"] as? Bool == true }
    }

    /// Connected, no resync, both disks UpToDate.
    var inSync: Bool { connection == .connected && disk == .upToDate && peerDisk == .upToDate }
}
