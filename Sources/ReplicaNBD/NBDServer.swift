import Foundation
import ReplicaTransportTCP
import Logging
import Synchronization

/// An NBD server for one export on a Unix socket or TCP: fixed newstyle handshake (GO, INFO,
/// EXPORT_NAME, LIST, ABORT, STRUCTURED_REPLY; ERR_UNSUP for the rest), then READ, WRITE
/// (FUA), FLUSH, TRIM, WRITE_ZEROES (NO_HOLE, FAST_ZERO), DISC, with many requests in flight
/// per connection and several connections at once. Each connection has its own thread; a
/// client that breaks the protocol loses its connection, never the server.
public final class NBDServer: @unchecked Sendable {
    /// The export.
    public let source: any NBDExportSource
    /// Where it listens.
    public let address: String
    private let listener: NBDListener
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var stopped = false
        var nextClient = 1
        /// Connections in the handshake or in transmission, by number.
        var sockets: [Int: NBDSocket] = [:]
        /// Connections in transmission (they hold the export open).
        var open: Set<Int> = []
    }

    /// Listens on the Unix socket `path` (mode 0600).
    /// - Throws: when the path is in use by a live server or cannot be bound.
    public init(source: any NBDExportSource, unixSocket path: String, logger: Logger = Logger(label: "replica.nbd")) throws {
        self.source = source
        listener = try NBDListener.unix(path)
        address = path
        self.logger = logger
    }

    /// Listens on TCP at `endpoint` (the resource file's `nbd-address`). No authentication:
    /// bind it to an address only trusted clients reach.
    /// - Throws: when the address cannot be bound (in use, not local).
    public init(source: any NBDExportSource, tcp endpoint: TCPEndpoint, logger: Logger = Logger(label: "replica.nbd")) throws {
        self.source = source
        listener = try NBDListener.tcp(endpoint)
        address = "\(endpoint.address)"
        self.logger = logger
    }

    /// Starts accepting clients on a dedicated thread.
    public func start() {
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "replica-nbd-accept"
        thread.start()
    }

    /// Clients in transmission: they hold the export open (a Primary cannot be demoted).
    public var openClients: Int { state.withLock { $0.open.count } }

    /// Stops accepting and closes every client connection (requests in flight still finish
    /// on the backend; their replies are dropped), then removes the socket.
    public func stop() {
        let sockets = state.withLock { state -> [NBDSocket] in
            state.stopped = true
            return Array(state.sockets.values)
        }
        for socket in sockets { socket.close() }
        listener.close()
    }

    private func acceptLoop() {
        while !state.withLock({ $0.stopped }) {
            guard let socket = listener.accept(timeoutMilliseconds: 200) else { continue }
            let number: Int? = state.withLock { state in
                guard !state.stopped else { return nil }
                let number = state.nextClient
                state.nextClient += 1
                state.sockets[number] = socket
                return number
            }
            guard let number else {
                socket.close()
                return
            }
            let thread = Thread { [self] in serve(socket, number) }
            thread.name = "replica-nbd-client-\(number)"
            thread.start()
        }
    }

    private func serve(_ socket: NBDSocket, _ number: Int) {
        defer {
            socket.close()
            state.withLock { state in
                state.sockets[number] = nil
                state.open.remove(number)
            }
        }
        let outcome: NBDHandshake.Outcome
        do {
            outcome = try NBDHandshake(socket: socket, source: source).run()
        } catch {
            logger.info("nbd client \(number) on \(address): \(error) during the handshake")
            return
        }
        switch outcome {
        case .closed(let reason):
            logger.info("nbd client \(number) on \(address): \(reason)")
        case .transmission(let backend, let structured):
            _ = state.withLock { $0.open.insert(number) }
            logger.info("nbd client \(number) on \(address): transmission (structured replies: \(structured))")
            let reason = NBDTransmission(socket: socket, backend: backend, structuredReplies: structured).run()
            logger.info("nbd client \(number) on \(address): \(reason)")
        }
    }
}
