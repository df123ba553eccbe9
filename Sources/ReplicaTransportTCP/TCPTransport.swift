#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReplicaCore
import Synchronization

/// Options of the TCP transport, from the resource's `net { }` section.
public struct TCPTransportOptions: Sendable, Equatable {
    /// `connect-int`: pause between connection attempts, milliseconds.
    public var connectIntervalMilliseconds: Int = 10_000
    /// `sndbuf-size` (0 = autotuning).
    public var sendBufferSize: Int = 0
    /// `rcvbuf-size` (0 = autotuning).
    public var receiveBufferSize: Int = 0
    /// Time allowed for the first frame that classifies an accepted connection.
    public var classifyTimeoutMilliseconds: Int32 = 5_000

    /// Defaults as DRBD's.
    public init() {}
}

/// Replica's TCP transport: listens on this node's address and connects to the peer's,
/// settling on one pair of connections (data and meta), IPv4 or IPv6.
///
/// Where DRBD resolves crossed connection attempts with a coin flip, Replica decides by
/// address order: the node whose `address:port` sorts higher connects, the other accepts and
/// holds RESOLVE_CONFLICTS. Both listen, so either node may be started first; the result is the
/// same single pair DRBD ends with. Blocking calls run on dedicated threads.
public final class TCPTransport: Transport, @unchecked Sendable {
    /// This node's endpoint.
    public let local: TCPEndpoint
    /// The peer's endpoint.
    public let peer: TCPEndpoint
    /// Options.
    public let options: TCPTransportOptions
    private let running = Mutex(false)
    private let link = Mutex<TCPPeerLink?>(nil)
    private let listener = Mutex<BlockingSocket?>(nil)

    /// A transport between `local` and `peer`.
    public init(local: NetworkAddress, peer: NetworkAddress, options: TCPTransportOptions = TCPTransportOptions()) throws(TransportError) {
        do {
            self.local = try TCPEndpoint(local)
            self.peer = try TCPEndpoint(peer)
        } catch {
            throw TransportError("\(error)")
        }
        self.options = options
    }

    /// True when this node connects (its address sorts higher).
    public var isActive: Bool { local.address.description > peer.address.description }

    public func start(handler: any PeerLinkHandler) throws(TransportError) {
        let socket = try BlockingSocket.listening(on: local)
        listener.withLock { $0 = socket }
        running.withLock { $0 = true }
        let thread = Thread { [self] in self.manage(handler) }
        thread.name = "replica-tcp-\(local.address.port)"
        thread.start()
    }

    public func stop() {
        running.withLock { $0 = false }
        listener.withLock { $0?.close(); $0 = nil }
        link.withLock { $0 }?.close()
    }

    public func stopConnecting() {
        running.withLock { $0 = false }
        listener.withLock { $0?.close(); $0 = nil }
    }

    private var isRunning: Bool { running.withLock { $0 } }

    /// Keeps one link up while running.
    private func manage(_ handler: any PeerLinkHandler) {
        while isRunning {
            if let current = link.withLock({ $0 }), !current.isClosed {
                // Accept and drop stray connections while a link is up.
                if let listening = listener.withLock({ $0 }), let stray = try? listening.accept(timeoutMilliseconds: 200) { stray.close() }
                continue
            }
            let established = isActive ? connectPair(handler) : acceptPair(handler)
            if let established {
                link.withLock { $0 = established }
                handler.linkEstablished(established)
                established.startReceiving()
            } else if isActive {
                sleepWhileRunning(milliseconds: options.connectIntervalMilliseconds)
            }
        }
    }

    private func sleepWhileRunning(milliseconds: Int) {
        var left = milliseconds
        while left > 0, isRunning {
            usleep(UInt32(min(left, 100) * 1000))
            left -= 100
        }
    }

    private func configured(_ socket: BlockingSocket, channel: Channel) {
        socket.configure(noDelay: true, sendBuffer: options.sendBufferSize, receiveBuffer: options.receiveBufferSize)
    }

    private func sendInitial(_ socket: BlockingSocket, _ frame: Frame) throws(TransportError) {
        let header = FrameHeader(type: frame.type, volume: 0, length: 0).encoded()
        try header.withUnsafeBytes { bytes in Result { () throws(TransportError) in try socket.writeAll([bytes]) } }.get()
    }

    private func connectPair(_ handler: any PeerLinkHandler) -> TCPPeerLink? {
        do {
            let data = try BlockingSocket.make(for: peer)
            try data.connect(from: local, to: peer, timeoutMilliseconds: 2000)
            configured(data, channel: .data)
            try sendInitial(data, .initialData)
            let meta = try BlockingSocket.make(for: peer)
            try meta.connect(from: local, to: peer, timeoutMilliseconds: 2000)
            configured(meta, channel: .meta)
            try sendInitial(meta, .initialMeta)
            return TCPPeerLink(data: data, meta: meta, resolveConflicts: false, endpoints: "\(local.address) -> \(peer.address)", handler: handler)
        } catch {
            return nil
        }
    }

    private func acceptPair(_ handler: any PeerLinkHandler) -> TCPPeerLink? {
        var data: BlockingSocket?
        var meta: BlockingSocket?
        while isRunning, data == nil || meta == nil {
            guard let listening = listener.withLock({ $0 }), let accepted = try? listening.accept(timeoutMilliseconds: 200) else { continue }
            var poller = pollfd(fd: accepted.descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, options.classifyTimeoutMilliseconds) > 0 else {
                accepted.close()
                continue
            }
            var bytes = [UInt8](repeating: 0, count: FrameHeader.size)
            let read = bytes.withUnsafeMutableBytes { buffer in Result { () throws(TransportError) in try accepted.readExactly(buffer) } }
            guard case .success = read, let header = try? FrameHeader(bytes: bytes), header.length == 0 else {
                accepted.close()
                continue
            }
            switch header.type {
            case .initialData:
                data?.close()
                data = accepted
            case .initialMeta:
                meta?.close()
                meta = accepted
            default:
                accepted.close()
            }
        }
        guard let data, let meta else {
            data?.close()
            meta?.close()
            return nil
        }
        configured(data, channel: .data)
        configured(meta, channel: .meta)
        return TCPPeerLink(data: data, meta: meta, resolveConflicts: true, endpoints: "\(local.address) <- \(peer.address)", handler: handler)
    }
}
