import Foundation
import Logging
import ReplicaCore
import ReplicaTransportTCP
import Synchronization

/// How many clients an NBD server serves at once, and how many requests each may have in
/// flight; nbdkit's defaults (16 requests per connection, its thread count for parallel
/// plugins) where it has one.
public struct NBDLimits: Sendable, Equatable {
    /// Clients connected at once; one more is refused (closed before the handshake, as
    /// nbdkit's limit filter does) and the refusal logged.
    public var clients: Int
    /// Requests a client may have in flight; the server reads no more from it meanwhile (the
    /// client's socket fills: back-pressure, never a dropped request).
    public var requestsPerClient: Int

    /// Limits of `clients` connections with `requestsPerClient` requests each.
    public init(clients: Int = 64, requestsPerClient: Int = 16) {
        self.clients = max(1, clients)
        self.requestsPerClient = max(1, requestsPerClient)
    }
}

/// TLS on an NBD export (NBD_OPT_STARTTLS): the server's context, and whether a client must
/// upgrade before anything else (NBD_REP_ERR_TLS_REQD for every other option).
public struct NBDTLSPolicy: Sendable {
    /// The server's certificate, key and (for client certificates) CA.
    public var context: TLSContext
    /// True: TLS required; false: offered.
    public var required: Bool
    /// Time allowed for the TLS handshake.
    public var handshakeTimeoutMilliseconds: Int32 = 10_000

    /// A policy with `context`.
    public init(context: TLSContext, required: Bool) {
        self.context = context
        self.required = required
    }

    /// The policy of a host's `nbd-tls` settings: `DIR/server-cert.pem` and
    /// `DIR/server-key.pem`, and `DIR/ca-cert.pem`, when it exists, for client certificates
    /// (then required); or the pre-shared keys of the `nbd-tls-psk` file; nil for `nbd-tls off`.
    /// - Throws: ``TLSSetupError`` for a file that cannot be loaded.
    public static func forExport(_ spec: NBDTLSSpec) throws(TLSSetupError) -> NBDTLSPolicy? {
        guard spec.mode != "off" else { return nil }
        if let file = spec.preSharedKeys {
            return NBDTLSPolicy(context: try TLSContext(preSharedKeys: try preSharedKeys(file)), required: spec.mode == "require")
        }
        guard let directory = spec.certificates else { return nil }
        let ca = directory + "/ca-cert.pem"
        let settings = TLSSettings(certificateFile: directory + "/server-cert.pem", privateKeyFile: directory + "/server-key.pem",
                                   caFile: FileManager.default.fileExists(atPath: ca) ? ca : nil)
        return NBDTLSPolicy(context: try TLSContext(settings, requirePeerCertificate: false), required: spec.mode == "require")
    }

    /// The keys of a PSK file as GnuTLS's `psktool` writes it (nbdkit's, qemu's and libnbd's
    /// format): one `identity:hexkey` per line.
    /// - Throws: ``TLSSetupError`` naming the file and the line that is not of that form.
    public static func preSharedKeys(_ file: String) throws(TLSSetupError) -> [(identity: String, key: [UInt8])] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TLSSetupError(option: "nbd-tls-psk", message: "\(file): cannot be read")
        }
        var keys: [(identity: String, key: [UInt8])] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            let parts = text.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, let key = HexText.bytes(parts[1]) else {
                throw TLSSetupError(option: "nbd-tls-psk", message: "\(file):\(number + 1): expected identity:hexkey (as psktool writes it)")
            }
            keys.append((String(parts[0]), key))
        }
        guard !keys.isEmpty else { throw TLSSetupError(option: "nbd-tls-psk", message: "\(file): no keys") }
        return keys
    }
}

/// An NBD server for one export on a Unix socket or TCP: fixed newstyle handshake (GO, INFO,
/// EXPORT_NAME, LIST, ABORT, STRUCTURED_REPLY; ERR_UNSUP for the rest), then READ, WRITE
/// (FUA), FLUSH, TRIM, WRITE_ZEROES (NO_HOLE, FAST_ZERO), DISC, with requests in flight per
/// connection and several connections at once, each bounded (``NBDLimits``). Each connection
/// has its own thread; a client that breaks the protocol loses its connection, never the
/// server. ``stop()`` closes every client and returns once their threads have ended.
public final class NBDServer: @unchecked Sendable {
    /// The export.
    public let source: any NBDExportSource
    /// Where it listens.
    public let address: String
    /// The bounds on clients and requests.
    public let limits: NBDLimits
    /// TLS offered or required (TCP exports), or nil.
    public let tls: NBDTLSPolicy?
    private let listener: NBDListener
    private let logger: Logger
    private let state = Mutex(State())
    private let acceptThread = Mutex<JoinableThread?>(nil)

    private struct State {
        var stopped = false
        var nextClient = 1
        /// Connections in the handshake or in transmission, by number.
        var clients: [Int: NBDSocket] = [:]
        /// Their threads, by number; and the threads of connections that ended, to join.
        var threads: [Int: JoinableThread] = [:]
        var finished: [JoinableThread] = []
        /// Connections in transmission (they hold the export open).
        var open: Set<Int> = []
        /// Clients refused for the limit since the last log line about it.
        var refusedSinceLog = 0
        var lastRefusalLog = Date.distantPast
    }

    /// Listens on the Unix socket `path` (mode 0600).
    /// - Throws: when the path is in use by a live server or cannot be bound.
    public init(source: any NBDExportSource, unixSocket path: String, limits: NBDLimits = NBDLimits(),
                logger: Logger = Logger(label: "replica.nbd")) throws {
        self.source = source
        listener = try NBDListener.unix(path)
        address = path
        tls = nil
        self.limits = limits
        self.logger = logger
    }

    /// Listens on TCP at `endpoint` (the resource file's `nbd-address`), offering or requiring
    /// TLS as `tls` says (without it, no authentication: bind it to an address only trusted
    /// clients reach).
    /// - Throws: when the address cannot be bound (in use, not local).
    public init(source: any NBDExportSource, tcp endpoint: TCPEndpoint, tls: NBDTLSPolicy? = nil, limits: NBDLimits = NBDLimits(),
                logger: Logger = Logger(label: "replica.nbd")) throws {
        self.source = source
        self.tls = tls
        listener = try NBDListener.tcp(endpoint)
        address = "\(endpoint.address)"
        self.limits = limits
        self.logger = logger
    }

    /// Starts accepting clients on a dedicated thread. False when the system refuses a thread.
    @discardableResult
    public func start() -> Bool {
        guard let thread = JoinableThread.start(name: "replica-nbd-accept", { [self] in acceptLoop() }) else {
            logger.error("nbd export \(address): no thread to accept clients")
            return false
        }
        acceptThread.withLock { $0 = thread }
        return true
    }

    /// Clients in transmission: they hold the export open (a Primary cannot be demoted).
    public var openClients: Int { state.withLock { $0.open.count } }

    /// Clients connected (in the handshake or in transmission).
    public var connectedClients: Int { state.withLock { $0.clients.count } }

    /// Stops accepting and closes every client connection (requests in flight still finish
    /// on the backend; their replies are dropped), removes the socket, and waits for the
    /// server's threads to end.
    public func stop() {
        let clients = state.withLock { state -> [NBDSocket] in
            state.stopped = true
            return Array(state.clients.values)
        }
        for client in clients { client.close() }
        listener.close()
        acceptThread.withLock { thread -> JoinableThread? in defer { thread = nil }; return thread }?.join()
        // No new client after the accept thread ended: join every client thread.
        let threads = state.withLock { state -> [JoinableThread] in
            defer {
                state.threads.removeAll()
                state.finished.removeAll()
            }
            return Array(state.threads.values) + state.finished
        }
        for thread in threads { thread.join() }
    }

    private func acceptLoop() {
        while let socket = listener.accept() {
            joinFinished()
            let number: Int? = state.withLock { state in
                guard !state.stopped else { return nil }
                guard state.clients.count < limits.clients else {
                    state.refusedSinceLog += 1
                    return -1
                }
                let number = state.nextClient
                state.nextClient += 1
                state.clients[number] = socket
                return number
            }
            guard let number, number > 0 else {
                socket.close()
                if number == nil { return }
                logRefusals()
                continue
            }
            guard let thread = JoinableThread.start(name: "replica-nbd-\(number)", { [self] in serve(socket, number) }) else {
                state.withLock { _ = $0.clients.removeValue(forKey: number) }
                socket.close()
                logger.error("nbd client on \(address) refused: the system refused a thread")
                continue
            }
            state.withLock { state in
                // A client may have ended already: its thread is joined with the finished ones.
                if state.clients[number] != nil { state.threads[number] = thread } else { state.finished.append(thread) }
            }
        }
    }

    /// Joins the threads of connections that ended.
    private func joinFinished() {
        let finished = state.withLock { state -> [JoinableThread] in
            defer { state.finished.removeAll() }
            return state.finished
        }
        for thread in finished { thread.join() }
    }

    /// Logs refused clients at most once a second.
    private func logRefusals() {
        let count: Int? = state.withLock { state in
            guard Date().timeIntervalSince(state.lastRefusalLog) >= 1 else { return nil }
            defer {
                state.refusedSinceLog = 0
                state.lastRefusalLog = Date()
            }
            return state.refusedSinceLog
        }
        if let count {
            logger.warning("nbd export \(address): \(count) client\(count == 1 ? "" : "s") refused: \(limits.clients) already connected (the limit)")
        }
    }

    private func serve(_ socket: NBDSocket, _ number: Int) {
        defer {
            socket.close()
            state.withLock { state in
                state.clients[number] = nil
                state.open.remove(number)
                if let thread = state.threads.removeValue(forKey: number) { state.finished.append(thread) }
            }
        }
        let outcome: NBDHandshake.Outcome
        do {
            outcome = try NBDHandshake(socket: socket, source: source, tls: tls).run()
        } catch {
            logger.info("nbd client \(number) on \(address): \(error) during the handshake")
            return
        }
        switch outcome {
        case .closed(let reason):
            logger.info("nbd client \(number) on \(address): \(reason)")
        case .transmission(let backend, let negotiated):
            _ = state.withLock { $0.open.insert(number) }
            logger.info("nbd client \(number) on \(address): transmission (TLS: \(socket.isTLS), structured replies: \(negotiated.structuredReplies), base:allocation: \(negotiated.allocationContext))")
            let reason = NBDTransmission(socket: socket, backend: backend, negotiated: negotiated,
                                         maximumInFlight: limits.requestsPerClient).run()
            logger.info("nbd client \(number) on \(address): \(reason)")
        }
    }
}
