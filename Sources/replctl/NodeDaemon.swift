#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReplicaCore
import ReplicaMetrics
import ReplicaNBD
import Synchronization

/// The per-node daemon: holds the resources that are up and answers `replctl` on a Unix
/// control socket in the run directory (one JSON object per line each way).
///
/// Commands on one resource run one at a time (``ResourceLocks``): two `up`s of the same
/// resource cannot both attach it, and a `down` waits for an `up` in progress. Reading
/// commands (`status`, `role`, …) do not wait.
final class NodeDaemon: @unchecked Sendable {
    let runDirectory: String
    let configPath: String
    let nodeName: String
    /// Bounds of the NBD exports.
    let nbdLimits: NBDLimits
    let resources = Mutex<[String: ResourceInstance]>([:])
    let locks = ResourceLocks()
    /// Every resource's state changes, for `events` streams.
    let stateChanges = StateChangeSignal()
    /// Engines a `down` left whose meta-data writes had failed (their disks let go), by backing
    /// device path: the next `up` of the same disk in this daemon takes what their meta-data
    /// may not say (``VolumeAttachment/attach(_:net:entropySeed:carrying:)``).
    let unwrittenMetadata = Mutex<[String: VolumeEngine]>([:])
    /// The Prometheus endpoint (`--metrics-address`, or a resource's `metrics-address`).
    let metrics = Mutex<MetricsEndpoint?>(nil)
    private let running = Mutex(true)
    private let listener = Mutex<OwnedDescriptor?>(nil)

    init(runDirectory: String, configPath: String, nodeName: String, nbdLimits: NBDLimits = NBDLimits()) {
        self.runDirectory = runDirectory
        self.configPath = configPath
        self.nodeName = nodeName
        self.nbdLimits = nbdLimits
    }

    static func socketPath(_ runDirectory: String) -> String { runDirectory + "/replctl.sock" }

    var isRunning: Bool { running.withLock { $0 } }

    /// Serves until a `shutdown` request (or SIGTERM): waits in `accept` for clients, without
    /// polling; ``stop()`` wakes it.
    func serve() throws {
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = Self.socketPath(runDirectory)
        let socket = OwnedDescriptor(try UnixSocket.listen(path))
        listener.withLock { $0 = socket }
        defer {
            socket.close()
            try? FileManager.default.removeItem(atPath: path)
        }
        let pidFile = runDirectory + "/replctl.pid"
        try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        FileOutput.standardError("replctl daemon: node \(nodeName), pid \(getpid()), control socket \(path)\n")
        while isRunning {
            guard let client = socket.use({ fd in accept(fd, nil, nil) }) else { break }
            guard client >= 0 else {
                if errno == EINVAL { break }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            Thread.detachNewThread { [self] in answer(client) }
        }
        for instance in resources.withLock({ Array($0.values) }) {
            locks.withLock(instance.name) { _ = instance.down() }
        }
        stopMetrics()
    }

    /// Ends ``serve()``: it stops accepting, takes every resource down and returns.
    func stop() {
        running.withLock { $0 = false }
        listener.withLock { $0 }?.close()
    }

    /// Answers one control connection: one request, one answer (or an events stream).
    private func answer(_ client: Int32) {
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

    func fail(_ message: String, _ code: Int32 = 1) -> ControlResponse {
        ControlResponse(exitCode: code, output: "", error: message)
    }

    func ok(_ output: String = "") -> ControlResponse {
        ControlResponse(exitCode: 0, output: output, error: "")
    }

    func instance(_ name: String) -> ResourceInstance? { resources.withLock { $0[name] } }

    func selected(_ resource: String?) -> [ResourceInstance] {
        let all = resources.withLock { Array($0.values) }.sorted { $0.minor < $1.minor }
        guard let resource, resource != "all" else { return all }
        return all.filter { $0.name == resource }
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
            return attach(request)
        case "status":
            let instances = selected(request.resource)
            if flags.contains("json") { return ok(StatusFormatter.json(instances)) }
            if flags.contains("proc") { return ok(StatusFormatter.proc(instances)) }
            return ok(StatusFormatter.drbdadm(instances, verbose: flags.contains("verbose"), statistics: flags.contains("statistics")))
        case "role", "cstate", "dstate":
            return stateQuery(request)
        case "write", "read":
            return dataCommand(request)
        default:
            break
        }
        guard let name = request.resource, !name.isEmpty else { return fail("'\(request.command)' needs a resource name") }
        let known = ["down", "detach", "primary", "secondary", "invalidate", "invalidate-remote", "outdate", "pause-sync",
                     "resume-sync", "new-current-uuid", "connect", "disconnect"]
        guard known.contains(request.command) else { return fail("unknown command '\(request.command)'") }
        return locks.withLock(name) {
            guard let instance = instance(name) else {
                return fail("'\(name)' is not up on this node (run 'replctl up \(name)' first)", 10)
            }
            return stateCommand(request, instance, flags: flags)
        }
    }

    /// A command that changes the state of a resource that is up (under its lock).
    private func stateCommand(_ request: ControlRequest, _ instance: ResourceInstance, flags: Set<String>) -> ControlResponse {
        let runtime = instance.runtime
        let name = instance.name
        func stateChange(_ result: Result<Void, StateChangeError>) -> ControlResponse {
            switch result {
            case .success: return ok()
            case .failure(let error): return fail("\(name): State change failed: (\(error.code)) \(error)", ExitCodes.stateRefused)
            }
        }
        switch request.command {
        case "down":
            return takeDown(instance)
        case "detach":
            let states = runtime.resourceSnapshot.volumes.map(\.state)
            if states.allSatisfy({ $0.connection == .standAlone && $0.role == .secondary }) {
                // Nothing would be left to serve: the resource is taken down (Unconfigured).
                return takeDown(instance)
            }
            // Diskless from now on; a Primary serves its I/O through the peer.
            return stateChange(runtime.admin { $0.detach() })
        case "primary":
            return stateChange(runtime.admin(undo: { $0.demote() }) { $0.promote(force: flags.contains("force")) })
        case "secondary":
            // As DRBD refuses to demote while /dev/drbdN is open.
            let clients = instance.openClients
            guard clients == 0 else {
                return fail("\(name): State change failed: (-12) Device is held open by someone (\(clients) NBD client\(clients == 1 ? "" : "s") on \(instance.exportAddresses))", ExitCodes.stateRefused)
            }
            return stateChange(runtime.admin(undo: { $0.promote(force: false) }) { $0.demote() })
        case "invalidate":
            return stateChange(runtime.admin { $0.invalidate() })
        case "invalidate-remote":
            return stateChange(runtime.admin { $0.invalidateRemote() })
        case "outdate":
            return stateChange(runtime.admin { $0.outdate() })
        case "pause-sync":
            return stateChange(runtime.admin { $0.setUserSyncPause(true) })
        case "resume-sync":
            return stateChange(runtime.admin { $0.setUserSyncPause(false) })
        case "new-current-uuid":
            return stateChange(runtime.admin { $0.newCurrentUUID(clearBitmap: flags.contains("clear-bitmap")) })
        case "connect":
            do {
                try runtime.connect(discardMyData: flags.contains("discard-my-data"))
                return ok()
            } catch let error as StateChangeError {
                return fail("\(name): State change failed: (\(error.code)) \(error)", ExitCodes.stateRefused)
            } catch {
                return fail("\(name): \(error)", 10)
            }
        case "disconnect":
            do {
                try runtime.disconnect()
                return ok()
            } catch {
                return fail("\(name): State change failed: (\(error.code)) \(error)", ExitCodes.stateRefused)
            }
        default:
            return fail("unknown command '\(request.command)'")
        }
    }

    /// `down`: exports stopped, the runtime shut down, the resource forgotten; what did not
    /// go as asked (requests still in flight, a refused demotion) is reported.
    func takeDown(_ instance: ResourceInstance) -> ControlResponse {
        let report = instance.down()
        resources.withLock { $0[instance.name] = nil }
        keepUnwrittenMetadata(of: instance)
        guard report.problems.isEmpty else {
            return ControlResponse(exitCode: 0, output: "", error: report.problems.map { "\(instance.name): \($0)" }.joined(separator: "\n"))
        }
        return ok()
    }

    /// `role`, `cstate`, `dstate` (the first volume's, as drbdadm prints a single-volume resource).
    private func stateQuery(_ request: ControlRequest) -> ControlResponse {
        guard let name = request.resource, let instance = instance(name) else {
            return fail("'\(request.resource ?? "")' is not up on this node (run 'replctl up \(request.resource ?? "RES")' first)", 10)
        }
        let lines = instance.runtime.resourceSnapshot.volumes.map { volume -> String in
            let state = volume.state
            switch request.command {
            case "role": return "\(state.role)/\(state.peerRole)"
            case "cstate": return "\(state.connection)"
            default: return "\(state.disk)/\(state.peerDisk)"
            }
        }
        let text = request.command == "role" ? lines[0] : lines.joined(separator: "\n")
        if request.flags.contains("json") {
            return ok("{\"resource\":\"\(name)\",\"\(request.command)\":\"\(lines[0])\"}\n")
        }
        return ok(text + "\n")
    }

    /// `write`/`read`: the debugging data path of a resource's volume.
    private func dataCommand(_ request: ControlRequest) -> ControlResponse {
        guard let name = request.resource, let instance = instance(name) else {
            return fail("'\(request.resource ?? "")' is not up on this node (run 'replctl up \(request.resource ?? "RES")' first)", 10)
        }
        let volume = UInt16(request.volume ?? 0)
        guard instance.runtime.volumeNumbers.contains(volume) else { return fail("\(name) has no volume \(volume)") }
        let access = VolumeIO(runtime: instance.runtime, volume: volume)
        if request.command == "write" {
            guard let offset = request.offset, let text = request.data, let bytes = Data(base64Encoded: text) else {
                return fail("write needs an offset and base64 data")
            }
            switch access.perform(.write(offset: offset, data: Array(bytes))).flatMap({ _ in access.perform(.flush) }) {
            case .success: return ok()
            case .failure(let error): return fail("\(error)", 5)
            }
        }
        guard let offset = request.offset, let length = request.length, length <= 1 << 20 else {
            return fail("read needs an offset and a length of at most 1 MiB")
        }
        switch access.perform(.read(offset: offset, length: length)) {
        case .success(let data): return ok(Data(data).base64EncodedString())
        case .failure(let error): return fail("\(error)", 5)
        }
    }
}

/// One lock per resource name: commands that change a resource run one at a time.
final class ResourceLocks: @unchecked Sendable {
    private let table = Mutex<[String: NSLock]>([:])

    /// Runs `body` holding `name`'s lock.
    func withLock<Value>(_ name: String, _ body: () throws -> Value) rethrows -> Value {
        let lock = table.withLock { table in
            if let lock = table[name] { return lock }
            let lock = NSLock()
            table[name] = lock
            return lock
        }
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// Blocking application I/O on a volume of a runtime (the daemon's `read`/`write` commands).
struct VolumeIO {
    let runtime: ReplicationRuntime
    let volume: UInt16

    func perform(_ request: ApplicationRequest) -> Result<[UInt8], RequestError> {
        let done = DispatchSemaphore(value: 0)
        let box = Mutex<Result<[UInt8], RequestError>>(.failure(.aborted))
        runtime.submit(request, volume: volume) { result in
            box.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return box.withLock { $0 }
    }
}
