#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReplicaCore
import ReplicaNBD
import ReplicaTransportTCP
import Synchronization

/// The per-node daemon: holds the resources that are up and answers `replctl` on a Unix
/// control socket in the run directory (one JSON object per line each way).
final class NodeDaemon: @unchecked Sendable {
    let runDirectory: String
    let configPath: String
    let nodeName: String
    private let resources = Mutex<[String: ResourceInstance]>([:])
    private let running = Mutex(true)

    init(runDirectory: String, configPath: String, nodeName: String) {
        self.runDirectory = runDirectory
        self.configPath = configPath
        self.nodeName = nodeName
    }

    static func socketPath(_ runDirectory: String) -> String { runDirectory + "/replctl.sock" }

    /// Serves until a `shutdown` request (or SIGTERM).
    func serve() throws {
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = Self.socketPath(runDirectory)
        let listener = try UnixSocket.listen(path)
        defer {
            close(listener)
            try? FileManager.default.removeItem(atPath: path)
        }
        let pidFile = runDirectory + "/replctl.pid"
        try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        FileOutput.standardError("replctl daemon: node \(nodeName), pid \(getpid()), control socket \(path)\n")
        while running.withLock({ $0 }) {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let thread = Thread { [self] in
                defer { close(client) }
                guard let line = UnixSocket.readLine(client), let data = line.data(using: .utf8),
                      let request = try? JSONDecoder().decode(ControlRequest.self, from: data) else {
                    UnixSocket.write(client, #"{"error":"malformed request: expected one JSON object on one line","exitCode":1,"output":""}"# + "\n")
                    return
                }
                if request.command == "events" {
                    streamEvents(client, now: request.flags.contains("now"))
                    return
                }
                let response = handle(request)
                let encoded = (try? JSONEncoder.controlLine.encode(response)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                UnixSocket.write(client, encoded + "\n")
            }
            thread.start()
        }
        for instance in resources.withLock({ Array($0.values) }) {
            instance.stopExports()
            instance.volume.down()
        }
    }

    func stop() { running.withLock { $0 = false } }

    private func fail(_ message: String, _ code: Int32 = 1) -> ControlResponse {
        ControlResponse(exitCode: code, output: "", error: message)
    }

    private func ok(_ output: String = "") -> ControlResponse {
        ControlResponse(exitCode: 0, output: output, error: "")
    }

    func handle(_ request: ControlRequest) -> ControlResponse {
        let flags = Set(request.flags)
        switch request.command {
        case "ping":
            return ok("pong")
        case "shutdown":
            stop()
            return ok()
        case "up":
            return up(request, connect: true)
        case "attach":
            if let name = request.resource, let instance = resources.withLock({ $0[name] }), instance.volume.state.disk == .diskless {
                return reattach(request, instance)
            }
            return up(request, connect: false)
        case "status":
            let instances = selected(request.resource)
            if flags.contains("json") { return ok(StatusFormatter.json(instances)) }
            if flags.contains("proc") { return ok(StatusFormatter.proc(instances)) }
            return ok(StatusFormatter.drbdadm(instances, verbose: flags.contains("verbose"), statistics: flags.contains("statistics")))
        default:
            break
        }
        guard let name = request.resource, let instance = resources.withLock({ $0[name] }) else {
            return fail("'\(request.resource ?? "")' is not up on this node (run 'replctl up \(request.resource ?? "RES")' first)", 10)
        }
        let volume = instance.volume
        func stateChange(_ result: Result<Void, StateChangeError>) -> ControlResponse {
            switch result {
            case .success: return ok()
            case .failure(let error): return fail("State change failed: (\(error.code)) \(error)", ExitCodes.stateRefused)
            }
        }
        switch request.command {
        case "down":
            instance.stopExports()
            volume.down()
            resources.withLock { $0[name] = nil }
            return ok()
        case "detach":
            let state = volume.state
            if state.connection == .standAlone, state.role == .secondary {
                // Nothing would be left to serve: the volume is taken down (Unconfigured).
                instance.stopExports()
                volume.down()
                resources.withLock { $0[name] = nil }
                return ok()
            }
            // Diskless from now on; a Primary serves its I/O through the peer.
            return stateChange(volume.runtime.admin { $0.detach() })
        case "primary":
            return stateChange(volume.runtime.admin { $0.promote(force: flags.contains("force")) })
        case "secondary":
            // As DRBD refuses to demote while /dev/drbdN is open.
            let clients = instance.openClients
            guard clients == 0 else {
                return fail("\(name): State change failed: (-12) Device is held open by someone (\(clients) NBD client\(clients == 1 ? "" : "s") on \(instance.exportAddresses))", ExitCodes.stateRefused)
            }
            return stateChange(volume.runtime.admin { $0.demote() })
        case "invalidate":
            return stateChange(volume.runtime.admin { $0.invalidate() })
        case "invalidate-remote":
            return stateChange(volume.runtime.admin { $0.invalidateRemote() })
        case "outdate":
            return stateChange(volume.runtime.admin { $0.outdate() })
        case "pause-sync":
            return stateChange(volume.runtime.admin { $0.setUserSyncPause(true) })
        case "resume-sync":
            return stateChange(volume.runtime.admin { $0.setUserSyncPause(false) })
        case "new-current-uuid":
            return stateChange(volume.runtime.admin { $0.newCurrentUUID(clearBitmap: flags.contains("clear-bitmap")) })
        case "connect":
            do {
                try volume.runtime.connect(discardMyData: flags.contains("discard-my-data"))
                return ok()
            } catch {
                return fail("\(error)", 10)
            }
        case "disconnect":
            volume.runtime.disconnect()
            return ok()
        case "write":
            guard let offset = request.offset, let text = request.data, let bytes = Data(base64Encoded: text) else {
                return fail("write needs an offset and base64 data")
            }
            do {
                try volume.write(Array(bytes), at: offset)
                try volume.flush()
                return ok()
            } catch {
                return fail("\(error)", 5)
            }
        case "read":
            guard let offset = request.offset, let length = request.length, length <= 1 << 20 else {
                return fail("read needs an offset and a length of at most 1 MiB")
            }
            do {
                return ok(Data(try volume.read(count: length, at: offset)).base64EncodedString())
            } catch {
                return fail("\(error)", 5)
            }
        case "role", "cstate", "dstate":
            let state = volume.state
            let text: String
            switch request.command {
            case "role": text = "\(state.role)/\(state.peerRole)"
            case "cstate": text = "\(state.connection)"
            default: text = "\(state.disk)/\(state.peerDisk)"
            }
            if flags.contains("json") {
                return ok("{\"resource\":\"\(name)\",\"\(request.command)\":\"\(text)\"}\n")
            }
            return ok(text + "\n")
        default:
            return fail("unknown command '\(request.command)'")
        }
    }

    /// Streams state changes in the style of `drbdsetup events2`: the current state as
    /// `exists` lines, `exists -`, then a `change` line whenever a field changes.
    private func streamEvents(_ client: Int32, now: Bool) {
        var last: [String: [String: String]] = [:]
        var first = true
        while running.withLock({ $0 }) {
            var lines: [String] = []
            let instances = selected(nil)
            for instance in instances {
                let s = instance.volume.runtime.snapshot
                let objects: [(String, String, [(String, String)])] = [
                    ("resource", "name:\(instance.name)", [("role", "\(s.state.role)"), ("suspended", "no")]),
                    ("device", "name:\(instance.name) volume:0 minor:\(instance.minor)", [("disk", "\(s.state.disk)"), ("client", "no")]),
                    ("connection", "name:\(instance.name) peer-node-id:1 conn-name:\(instance.peerName)",
                     [("connection", s.state.connection >= .connected ? "Connected" : s.state.connection == .standAlone ? "StandAlone" : "Connecting"),
                      ("role", "\(s.state.peerRole)")]),
                    ("peer-device", "name:\(instance.name) peer-node-id:1 conn-name:\(instance.peerName) volume:0",
                     [("replication", s.state.connection == .connected ? "Established" : s.state.connection >= .connected ? "\(s.state.connection)" : "Off"),
                      ("peer-disk", "\(s.state.peerDisk)")]),
                ]
                for (kind, key, fields) in objects {
                    let id = kind + " " + key
                    let previous = last[id]
                    let changed = fields.filter { previous?[$0.0] != $0.1 }
                    if first || previous == nil {
                        lines.append("\(first ? "exists" : "create") \(kind) \(key) " + fields.map { "\($0.0):\($0.1)" }.joined(separator: " "))
                    } else if !changed.isEmpty {
                        lines.append("change \(kind) \(key) " + changed.map { "\($0.0):\($0.1)" }.joined(separator: " "))
                    }
                    last[id] = Dictionary(uniqueKeysWithValues: fields)
                }
            }
            if first { lines.append("exists -") }
            first = false
            if !lines.isEmpty {
                let text = lines.joined(separator: "\n") + "\n"
                let sent = text.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                if sent < 0 { return }
            }
            if now { return }
            usleep(100_000)
        }
    }

    private func selected(_ resource: String?) -> [ResourceInstance] {
        let all = resources.withLock { Array($0.values) }.sorted { $0.minor < $1.minor }
        guard let resource, resource != "all" else { return all }
        return all.filter { $0.name == resource }
    }

    /// `attach` of a Diskless volume. A Secondary is brought up again on its disk (the
    /// connection drops and is made again; the handshake resyncs what the disk missed). A
    /// Primary keeps its connection and its NBD clients: the disk is taken into use in place
    /// and resynced from the peer while the volume serves.
    private func reattach(_ request: ControlRequest, _ instance: ResourceInstance) -> ControlResponse {
        guard instance.backingDevice != "none" else {
            return fail("\(instance.name): has 'disk none' in its configuration: there is no disk to attach", ExitCodes.stateRefused)
        }
        let state = instance.volume.state
        guard state.role == .secondary else {
            let configuration: Configuration
            do {
                configuration = try ConfigBuilder.load(path: request.config ?? configPath)
            } catch {
                return fail(error.description, 10)
            }
            do {
                try instance.volume.attachInPlace(configuration: configuration, resource: instance.name, node: nodeName)
                return ok()
            } catch {
                return fail("\(instance.name): attach of the Diskless Primary refused: \(error)", ExitCodes.stateRefused)
            }
        }
        guard instance.openClients == 0 else {
            return fail("\(instance.name): State change failed: (-12) Device is held open by someone", ExitCodes.stateRefused)
        }
        let wasConnecting = state.connection != .standAlone
        instance.stopExports()
        instance.volume.down()
        resources.withLock { $0[instance.name] = nil }
        return up(request, connect: wasConnecting)
    }

    private func up(_ request: ControlRequest, connect: Bool) -> ControlResponse {
        guard let name = request.resource else { return fail("up needs a resource name") }
        let configuration: Configuration
        do {
            configuration = try ConfigBuilder.load(path: request.config ?? configPath)
        } catch {
            return fail(error.description, 10)
        }
        let names = name == "all" ? configuration.resources.filter { $0.hosts.contains { $0.names.contains(nodeName) } }.map(\.name) : [name]
        for name in names {
            if resources.withLock({ $0[name] != nil }) { continue }
            guard let resource = configuration.resource(named: name) else {
                return fail("'\(name)' not defined in your config (\(configuration.file)).", 10)
            }
            do {
                let volumes = try NodeResolver(nodeName: nodeName).volumes(of: resource, in: configuration)
                let transport = try TCPTransport.forResource(configuration, name, node: nodeName)
                let volume = try ReplicatedVolume(configuration: configuration, resource: name, node: nodeName, transport: transport)
                let peer = resource.hosts.first { !$0.names.contains(nodeName) }?.names.first ?? "peer"
                let minor = volumes[0].device.minor
                let source = VolumeExport(resource: name, minor: minor, runtime: volume.runtime)
                var exports = [try NBDServer(source: source, unixSocket: "\(runDirectory)/replica\(minor)")]
                if let nbdAddress = resource.hosts.first(where: { $0.names.contains(nodeName) })?.nbdAddress {
                    do {
                        exports.append(try NBDServer(source: source, tcp: try TCPEndpoint(nbdAddress)))
                    } catch {
                        exports[0].stop()
                        volume.down()
                        return fail("\(name): cannot export on nbd-address \(nbdAddress): \(error)", 20)
                    }
                }
                for export in exports { export.start() }
                let instance = ResourceInstance(name: name, minor: minor, peerName: peer, volume: volume,
                                                backingDevice: { if case .path(let p) = volumes[0].disk { p } else { "none" } }(), exports: exports)
                resources.withLock { $0[name] = instance }
                if connect { try volume.up() }
            } catch let error as ConfigError {
                return fail(error.description, 10)
            } catch {
                return fail("\(name): \(error)", 20)
            }
        }
        return ok()
    }
}

/// A resource that is up in the daemon.
final class ResourceInstance: @unchecked Sendable {
    let name: String
    let minor: Int
    let peerName: String
    let volume: ReplicatedVolume
    let backingDevice: String
    /// The NBD exports of the volume: RUN_DIR/replicaMINOR, then TCP where the resource
    /// file gives this host an `nbd-address`.
    let exports: [NBDServer]
    let started = Date()
    /// (time, out-of-sync bits) samples for the resync speed.
    private let marks = Mutex<[(Date, Int64)]>([])

    init(name: String, minor: Int, peerName: String, volume: ReplicatedVolume, backingDevice: String, exports: [NBDServer]) {
        self.exports = exports
        self.name = name
        self.minor = minor
        self.peerName = peerName
        self.volume = volume
        self.backingDevice = backingDevice
    }

    /// NBD clients in transmission on every export (they hold the device open).
    var openClients: Int { exports.reduce(0) { $0 + $1.openClients } }

    /// Where the volume is exported (the Unix socket first).
    var exportAddresses: String { exports.map(\.address).joined(separator: ",") }

    /// Stops every export; their clients are disconnected.
    func stopExports() { for export in exports { export.stop() } }

    /// Records a progress mark and returns the recent and average sync speed in KiB/s.
    func syncSpeed() -> (recent: Int64, average: Int64) {
        let now = Date()
        let left = volume.runtime.snapshot.outOfSyncBits
        return marks.withLock { marks in
            if marks.last.map({ now.timeIntervalSince($0.0) > 0.5 }) ?? true { marks.append((now, left)) }
            if marks.count > 40 { marks.removeFirst(marks.count - 40) }
            guard let first = marks.first, let last = marks.last, last.0 > first.0 else { return (0, 0) }
            let recentStart = marks.count > 6 ? marks[marks.count - 6] : first
            let recent = Double(recentStart.1 - last.1) * 4 / max(0.001, last.0.timeIntervalSince(recentStart.0))
            let average = Double(first.1 - last.1) * 4 / max(0.001, last.0.timeIntervalSince(first.0))
            return (Int64(max(0, recent)), Int64(max(0, average)))
        }
    }
}
