#if canImport(Glibc)
import Glibc
#endif
import CReplicaLinux
import ReplicaCore

/// Makes TCP streams between this node's address and the peer's (IPv4 or IPv6): the
/// ``StreamConnector`` of the TCP transport. Outgoing connections leave from this node's
/// configured address (the peer sees the address its configuration names).
public struct TCPConnector: StreamConnector {
    /// This node's endpoint.
    public let local: TCPEndpoint
    /// The peer's endpoint.
    public let peer: TCPEndpoint
    /// `sndbuf-size` (0 = autotuning).
    public var sendBufferSize = 0
    /// `rcvbuf-size` (0 = autotuning).
    public var receiveBufferSize = 0

    /// A connector between `local` and `peer`.
    public init(local: TCPEndpoint, peer: TCPEndpoint) {
        self.local = local
        self.peer = peer
    }

    public var kind: String { "tcp" }

    /// True when this node connects (its address sorts higher).
    public var dials: Bool { local.address.description > peer.address.description }

    public var endpoints: String { dials ? "\(local.address) -> \(peer.address)" : "\(local.address) <- \(peer.address)" }

    public func listen() throws(TransportError) -> any StreamListener {
        TCPListener(descriptor: try local.listeningSocket(backlog: 8), sendBuffer: sendBufferSize, receiveBuffer: receiveBufferSize,
                    filter: PeerAddressFilter(peer: peer))
    }

    public func dial(timeoutMilliseconds: Int32) throws(TransportError) -> any ByteStream {
        let fd = socket(peer.domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TransportError("socket(): \(String(cString: strerror(errno)))") }
        let stream = TCPStream(descriptor: fd)
        do {
            try Self.connect(fd, from: local, to: peer, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            stream.close()
            throw error
        }
        stream.configure(sendBuffer: sendBufferSize, receiveBuffer: receiveBufferSize)
        return stream
    }

    /// Binds `fd` to `local`'s address (any port) and connects to `remote` within the time.
    private static func connect(_ fd: Int32, from local: TCPEndpoint, to remote: TCPEndpoint, timeoutMilliseconds: Int32) throws(TransportError) {
        setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        var unbound = local.address
        unbound.port = 0
        do {
            let source = try TCPEndpoint(unbound)
            let rc = try source.withSocketAddress { address, length in bind(fd, address, length) }
            guard rc == 0 else {
                throw TransportError("bind to this node's address \(local.address.host) for the connection to \(remote.address): \(String(cString: strerror(errno)))")
            }
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError("bind to this node's address \(local.address.host): \(error)")
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let rc: Int32
        do {
            rc = try remote.withSocketAddress { address, length in Glibc.connect(fd, address, length) }
        } catch {
            throw TransportError("connect \(remote.address): \(error)")
        }
        if rc != 0 {
            guard errno == EINPROGRESS else { throw TransportError("connect \(remote.address): \(String(cString: strerror(errno)))") }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32
            repeat { ready = poll(&poller, 1, timeoutMilliseconds) } while ready < 0 && errno == EINTR
            guard ready > 0 else { throw TransportError("connect \(remote.address): timed out after \(timeoutMilliseconds) ms") }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { throw TransportError("connect \(remote.address): \(String(cString: strerror(error)))") }
        }
        _ = fcntl(fd, F_SETFL, flags)
    }
}

/// A listening TCP socket: ``accept()`` waits in the kernel until a connection comes or the
/// listener is closed (a shutdown wakes it), without polling. A connection from any address
/// but the peer's is closed at once (``PeerAddressFilter``).
final class TCPListener: StreamListener, @unchecked Sendable {
    private let socket: OwnedDescriptor
    private let sendBuffer: Int
    private let receiveBuffer: Int
    private let filter: PeerAddressFilter?

    init(descriptor: Int32, sendBuffer: Int, receiveBuffer: Int, filter: PeerAddressFilter? = nil) {
        socket = OwnedDescriptor(descriptor)
        self.sendBuffer = sendBuffer
        self.receiveBuffer = receiveBuffer
        self.filter = filter
    }

    func accept() throws(TransportError) -> (any ByteStream)? {
        while true {
            let result: Int32? = socket.use { fd in CReplicaLinux_accept_cloexec(fd) }
            guard let fd = result else { return nil }
            if fd >= 0 {
                if let filter, !filter.admits(fd) {
                    Glibc.close(fd)
                    continue
                }
                let stream = TCPStream(descriptor: fd)
                stream.configure(sendBuffer: sendBuffer, receiveBuffer: receiveBuffer)
                return stream
            }
            if socket.isClosed { return nil }
            switch errno {
            case EINTR, EAGAIN, ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH:
                continue
            case EINVAL:
                return nil  // shut down: the listener was closed
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                throw TransportError("accept: \(String(cString: strerror(errno))) (out of descriptors or memory)")
            default:
                throw TransportError("accept: \(String(cString: strerror(errno)))")
            }
        }
    }

    func close() { socket.close() }
}
