import Foundation
import Synchronization

/// Makes byte streams to one peer (TCP; TLS over TCP): the part of a stream transport that
/// knows addresses and sockets. Pairing the streams into a link is ``StreamTransport``'s.
public protocol StreamConnector: Sendable {
    /// The transport's name in status (`tcp`).
    var kind: String { get }
    /// True for the node that connects (its address sorts higher); the other accepts. Both
    /// listen, so either node may start first.
    var dials: Bool { get }
    /// "local -> peer" for this node.
    var endpoints: String { get }
    /// Starts listening on this node's address.
    func listen() throws(TransportError) -> any StreamListener
    /// Connects to the peer, giving up after `timeoutMilliseconds`.
    func dial(timeoutMilliseconds: Int32) throws(TransportError) -> any ByteStream
}

/// A listening endpoint of a ``StreamConnector``.
public protocol StreamListener: Sendable {
    /// The next incoming stream, waiting for it; nil once the listener was closed.
    /// - Throws: ``TransportError`` for a failure that is not one connection's own.
    func accept() throws(TransportError) -> (any ByteStream)?
    /// Stops listening; a waiting ``accept()`` returns nil. Idempotent.
    func close()
}

/// Options of a stream transport, from the resource's `net { }` section.
public struct StreamTransportOptions: Sendable, Equatable {
    /// `connect-int`: pause between connection attempts, milliseconds.
    public var connectIntervalMilliseconds: Int = 10_000
    /// Time allowed for the first frame that classifies an accepted stream, and for a dial.
    public var classifyTimeoutMilliseconds: Int32 = 5_000
    /// The link's queue size (bytes) below which held-back requests go on again.
    public var drainMarkBytes: Int = 4 << 20

    /// Defaults as DRBD's.
    public init() {}
}

/// A transport over byte streams: keeps one link (a data and a meta stream, each classified by
/// its first frame, ``Frame/initialData`` and ``Frame/initialMeta``) up while running, for any
/// ``StreamConnector``. Where DRBD resolves crossed connection attempts with a coin flip, the
/// node whose address sorts higher connects and the other accepts and holds
/// RESOLVE_CONFLICTS: the result is the single pair DRBD ends with. No polling: the accepting
/// side waits in `accept`, the connecting side sleeps `connect-int` on a condition that
/// ``stop()`` wakes.
public final class StreamTransport<Connector: StreamConnector>: Transport, @unchecked Sendable {
    /// The streams' maker.
    public let connector: Connector
    /// Options.
    public let options: StreamTransportOptions
    private let state = NSCondition()
    // Guarded by `state`.
    private var running = false
    private var listener: (any StreamListener)?
    private var link: FramedLink<StreamWire>?
    private var manager: JoinableThread?
    private var failure: String?

    /// Peer authentication (`cram-hmac-alg`, `shared-secret`) run on every new stream, or nil.
    public let authentication: PeerAuthentication?
    /// The layer securing every new stream (TLS), or nil for plain streams.
    public let security: (any StreamSecurity)?
    // Guarded by `state`: streams being paired or authenticated (closed by a stop, which
    // would otherwise wait for a peer that stalls in the middle of a frame).
    private var pairing: [ObjectIdentifier: any ByteStream] = [:]

    /// A transport making its streams with `connector`, securing each with `security` (TLS)
    /// and authenticating the peer on each with `authentication` when given.
    public init(connector: Connector, options: StreamTransportOptions = StreamTransportOptions(),
                security: (any StreamSecurity)? = nil, authentication: PeerAuthentication? = nil) {
        self.connector = connector
        self.options = options
        self.security = security
        self.authentication = authentication
    }

    public var kind: String { connector.kind }

    public var isEncrypted: Bool { security != nil }

    public var lastFailure: String? { state.withLock { failure } }

    public func start(handler: any PeerLinkHandler) throws(TransportError) {
        // A manager left by stopConnecting() ends first (it is only waking up).
        let previous = state.withLock { () -> JoinableThread? in
            defer { manager = nil }
            return running ? nil : manager
        }
        previous?.join()
        let listening = try connector.listen()
        let started: Bool = state.withLock {
            guard !running else { return false }
            running = true
            listener = listening
            return true
        }
        guard started else {
            listening.close()
            return
        }
        guard let thread = JoinableThread.start(name: "replica-link", { [self] in manage(handler) }) else {
            stop()
            throw TransportError("the system refused a thread for the connection manager")
        }
        state.withLock { manager = thread }
    }

    /// Stops listening and connecting, closes the link, and waits for every thread of the
    /// transport and its link to end. Not from inside an engine step (a link's receive thread
    /// may be waiting for the step).
    public func stop() {
        let current = halt()
        current?.close(reason: "closed")
        let thread = state.withLock { () -> JoinableThread? in
            defer { manager = nil }
            return manager
        }
        thread?.join()
        current?.join()
        // The link keeps its handler (the runtime): let it go, or the two keep each other.
        state.withLock { if link === current { link = nil } }
    }

    /// Stops listening and connecting without waiting (callable from an engine step): the
    /// manager thread ends on its own and is joined by the next ``start(handler:)`` or
    /// ``stop()``; the current link is left to its owner.
    public func stopConnecting() {
        _ = halt()
    }

    /// Stops listening and connecting; returns the current link.
    private func halt() -> FramedLink<StreamWire>? {
        let (listening, current, unpaired) = state.withLock { () -> ((any StreamListener)?, FramedLink<StreamWire>?, [any ByteStream]) in
            running = false
            defer {
                listener = nil
                pairing = [:]
                state.broadcast()
            }
            return (listener, link, Array(pairing.values))
        }
        listening?.close()
        for stream in unpaired { stream.close() }
        return current
    }

    private var isRunning: Bool { state.withLock { running } }

    private func noteFailure(_ reason: String?) { state.withLock { failure = reason } }

    /// Notes why an attempt failed and tells the handler (which logs a new reason once).
    private func attemptFailed(_ reason: String, _ handler: any PeerLinkHandler) {
        noteFailure(reason)
        handler.connectionAttemptFailed(reason: reason)
    }

    /// `stream` secured by the transport's security layer (the stream itself without one);
    /// nil, the stream closed and the reason told, when that failed.
    private func secured(_ stream: any ByteStream, dialled: Bool, _ handler: any PeerLinkHandler) -> (any ByteStream)? {
        guard let security else { return stream }
        do {
            let secure = try security.secure(stream, dialled: dialled, timeoutMilliseconds: options.classifyTimeoutMilliseconds)
            return secure
        } catch {
            stream.close()
            attemptFailed(error.description, handler)
            return nil
        }
    }

    /// Keeps one link up while running.
    private func manage(_ handler: any PeerLinkHandler) {
        let observer = LinkLossObserver(handler) { [state] in state.withLock { state.broadcast() } }
        var pending: (any ByteStream)?
        // When the current link started: one that ends sooner than `connect-int` (a peer that
        // drops every link in its handshake, a plain node meeting a TLS node) is not redialled
        // at once, or the two nodes would loop as fast as they can connect.
        var linkStarted: Date?
        while isRunning {
            if let current = state.withLock({ link }), !current.isClosed {
                if connector.dials {
                    // Wait for the link to end (the observer wakes us) or for stop().
                    state.withLock {
                        while running, !current.isClosed { state.wait() }
                    }
                    continue
                }
                // The accepting side takes what comes: a stray while the link is up is
                // dropped; once the link ended it is the first stream of the next pair.
                guard let listening = state.withLock({ listener }), let accepted = try? listening.accept() else { continue }
                if !current.isClosed {
                    accepted.close()
                    continue
                }
                pending = accepted
            }
            if let old = state.withLock({ link }) {
                old.join()
                state.withLock { link = nil }
                if connector.dials, let started = linkStarted {
                    let deadline = started.addingTimeInterval(Double(options.connectIntervalMilliseconds) / 1000)
                    state.withLock {
                        while running, state.wait(until: deadline) {}
                    }
                    guard isRunning else { break }
                }
            }
            let paired = connector.dials ? dialPair(observer) : acceptPair(observer, first: pending)
            pending = nil
            let established = paired.flatMap { link(data: $0.data, meta: $0.meta, handler: observer) }
            if let established {
                let started = state.withLock { () -> Bool in
                    guard running else { return false }
                    link = established
                    return true
                }
                guard started else {
                    established.close(reason: "closed")
                    established.join()
                    return
                }
                noteFailure(nil)
                linkStarted = Date()
                guard established.startSending(lowMark: options.drainMarkBytes) else { continue }
                handler.linkEstablished(established)
                _ = established.startReceiving()
            } else if connector.dials {
                let deadline = Date().addingTimeInterval(Double(options.connectIntervalMilliseconds) / 1000)
                state.withLock {
                    while running, state.wait(until: deadline) {}
                }
            }
        }
        pending?.close()
    }

    /// Connects a data and a meta stream (secured, when the transport secures its streams).
    private func dialPair(_ handler: any PeerLinkHandler) -> (data: any ByteStream, meta: any ByteStream)? {
        var data: (any ByteStream)?
        do throws(TransportError) {
            let first = try dialSecured(handler)
            data = first
            try Self.sendClassification(.initialData, on: first)
            let meta = try dialSecured(handler)
            do {
                try Self.sendClassification(.initialMeta, on: meta)
            } catch {
                meta.close()
                throw error
            }
            return (first, meta)
        } catch {
            data?.close()
            untrackAll()
            if !error.description.isEmpty { attemptFailed(error.description, handler) }
            return nil
        }
    }

    /// One new stream to the peer, tracked and secured; a failure of the security layer is
    /// told already and thrown with an empty description.
    private func dialSecured(_ handler: any PeerLinkHandler) throws(TransportError) -> any ByteStream {
        let plain = try connector.dial(timeoutMilliseconds: options.classifyTimeoutMilliseconds)
        do {
            try track(plain)
        } catch {
            plain.close()
            throw error
        }
        guard let stream = secured(plain, dialled: true, handler) else { throw TransportError("") }
        if stream !== plain {
            do {
                try track(stream)
            } catch {
                stream.close()
                throw error
            }
        }
        return stream
    }

    /// Accepts a data and a meta stream (`first`: one accepted already).
    private func acceptPair(_ handler: any PeerLinkHandler, first: (any ByteStream)?) -> (data: any ByteStream, meta: any ByteStream)? {
        var data: (any ByteStream)?
        var meta: (any ByteStream)?
        var next = first
        while isRunning, data == nil || meta == nil {
            let incoming: any ByteStream
            if let waiting = next {
                incoming = waiting
                next = nil
            } else {
                guard let listening = state.withLock({ listener }) else { break }
                do {
                    guard let stream = try listening.accept() else { break }
                    incoming = stream
                } catch {
                    attemptFailed(error.description, handler)
                    break
                }
            }
            guard (try? track(incoming)) != nil else {
                incoming.close()
                break
            }
            guard let accepted = secured(incoming, dialled: false, handler) else { continue }
            if accepted !== incoming, (try? track(accepted)) == nil {
                accepted.close()
                break
            }
            switch Self.classification(of: accepted, timeoutMilliseconds: options.classifyTimeoutMilliseconds) {
            case .success(.initialData):
                data.map(untrackAndClose)
                data = accepted
            case .success(.initialMeta):
                meta.map(untrackAndClose)
                meta = accepted
            case .success:
                untrackAndClose(accepted)
            case .failure(let unclassified):
                untrackAndClose(accepted)
                if let reason = unclassified.reason { attemptFailed(reason, handler) }
            }
        }
        guard let data, let meta, isRunning else {
            data?.close()
            meta?.close()
            untrackAll()
            return nil
        }
        return (data, meta)
    }

    /// The link over a classified pair of streams, once the peer is authenticated (when the
    /// resource asks for it); nil when it was not, the streams closed. A peer refused for
    /// good (a wrong secret) stops the transport: the handler hears why, and the resource
    /// goes StandAlone, as DRBD does after "Authentication of peer failed".
    private func link(data: any ByteStream, meta: any ByteStream, handler: any PeerLinkHandler) -> FramedLink<StreamWire>? {
        defer { untrackAll() }
        if let authentication {
            do throws(PeerAuthentication.Failure) {
                try authentication.authenticate(data, timeoutMilliseconds: options.classifyTimeoutMilliseconds)
                try authentication.authenticate(meta, timeoutMilliseconds: options.classifyTimeoutMilliseconds)
            } catch {
                data.close()
                meta.close()
                switch error {
                case .transport(let failure):
                    attemptFailed("authentication: \(failure)", handler)
                case .refused(let reason):
                    noteFailure(reason)
                    _ = halt()
                    handler.connectionRefused(reason: reason)
                }
                return nil
            }
        }
        return FramedLink(data: StreamWire(data), meta: StreamWire(meta), resolveConflicts: !connector.dials,
                          endpoints: connector.endpoints, handler: handler)
    }

    /// Registers a stream being paired (a stop closes it); throws once stopped.
    private func track(_ stream: any ByteStream) throws(TransportError) {
        let kept = state.withLock { () -> Bool in
            guard running else { return false }
            pairing[ObjectIdentifier(stream)] = stream
            return true
        }
        if !kept { throw TransportError("the transport was stopped") }
    }

    private func untrackAndClose(_ stream: any ByteStream) {
        _ = state.withLock { pairing.removeValue(forKey: ObjectIdentifier(stream)) }
        stream.close()
    }

    private func untrackAll() { state.withLock { pairing = [:] } }

    /// Sends the frame that tells the peer which channel a new stream is.
    static func sendClassification(_ frame: Frame, on stream: any ByteStream) throws(TransportError) {
        try stream.send(FrameHeader(type: frame.type, volume: 0, length: 0).encoded())
    }

    /// Why a new stream was not classified: nil when there is nothing to tell (no frame in
    /// time, a stray), else a reason for the log.
    struct Unclassified: Error {
        var reason: String?
    }

    /// The classifying frame a new stream starts with; a failure says why where it can (a
    /// TLS handshake from a peer with `tls yes` on a plain node).
    static func classification(of stream: any ByteStream, timeoutMilliseconds: Int32) -> Result<FrameType, Unclassified> {
        guard (try? stream.waitForData(milliseconds: timeoutMilliseconds)) == true else { return .failure(Unclassified()) }
        var bytes = [UInt8](repeating: 0, count: FrameHeader.size)
        let read = bytes.withUnsafeMutableBytes { buffer in Result { () throws(TransportError) in try stream.receiveExactly(buffer) } }
        guard case .success = read else { return .failure(Unclassified()) }
        if bytes[0] == 0x16, bytes[1] == 0x03 {
            return .failure(Unclassified(reason: "the peer started a TLS handshake: it has `tls yes` and this node has not (no fallback to plain text)"))
        }
        guard let header = try? FrameHeader(bytes: bytes), header.length == 0,
              header.type == .initialData || header.type == .initialMeta else { return .failure(Unclassified()) }
        return .success(header.type)
    }
}

/// Passes a link's news on to the runtime's handler, and tells the transport when a link is
/// lost (so that it makes the next one without polling).
final class LinkLossObserver: PeerLinkHandler, @unchecked Sendable {
    private let handler: any PeerLinkHandler
    private let lost: @Sendable () -> Void

    init(_ handler: any PeerLinkHandler, lost: @escaping @Sendable () -> Void) {
        self.handler = handler
        self.lost = lost
    }

    func linkEstablished(_ link: any PeerLink) { handler.linkEstablished(link) }
    func received(_ frames: [ReceivedFrame], on link: any PeerLink) { handler.received(frames, on: link) }
    func linkDrained(_ link: any PeerLink) { handler.linkDrained(link) }
    func linkLost(_ link: any PeerLink, reason: String) {
        handler.linkLost(link, reason: reason)
        lost()
    }
    func connectionRefused(reason: String) { handler.connectionRefused(reason: reason) }
    func connectionAttemptFailed(reason: String) { handler.connectionAttemptFailed(reason: reason) }
}
