#if canImport(Glibc)
import Glibc
#endif
import ReplicaCore

/// A connected TCP socket as a ``ByteStream``, with the zero-copy capability of a plain socket
/// (``SplicingStream``: large blocks spliced to and from pipes). The descriptor has one owner
/// (``OwnedDescriptor``): a close from any thread wakes blocked calls, and the number is never
/// reused while one of them runs.
public final class TCPStream: ByteStream, SplicingStream, @unchecked Sendable {
    private let socket: OwnedDescriptor

    /// Takes ownership of a connected socket.
    public init(descriptor: Int32) { socket = OwnedDescriptor(descriptor) }

    private static let closedError = TransportError("the connection is closed")

    /// Runs `body` with the socket's descriptor; fails once the stream is closed.
    private func withSocket<Value>(_ body: (Int32) throws(TransportError) -> Value) throws(TransportError) -> Value {
        guard let value = try socket.use(body) else { throw Self.closedError }
        return value
    }

    /// TCP_NODELAY, SO_KEEPALIVE and the configured buffer sizes (0 = kernel autotuning).
    func configure(sendBuffer: Int, receiveBuffer: Int) {
        _ = socket.use { fd in
            setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1)
            if sendBuffer > 0 { setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: sendBuffer)) }
            if receiveBuffer > 0 { setOption(fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: receiveBuffer)) }
        }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        try withSocket { fd throws(TransportError) in
            while true {
                let n = recv(fd, buffer.baseAddress!, buffer.count, 0)
                if n > 0 { return n }
                if n == 0 { throw TransportError(TransportError.closedByPeer) }
                if errno == EINTR { continue }
                throw TransportError("recv: \(String(cString: strerror(errno)))")
            }
        }
    }

    public func waitForData(milliseconds: Int32) throws(TransportError) -> Bool {
        try withSocket { fd throws(TransportError) in
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while true {
                let ready = poll(&poller, 1, milliseconds)
                if ready < 0, errno == EINTR { continue }
                if ready < 0 { throw TransportError("poll: \(String(cString: strerror(errno)))") }
                return ready > 0
            }
        }
    }

    public func send(_ buffers: [UnsafeRawBufferPointer], more: Bool) throws(TransportError) {
        try withSocket { fd throws(TransportError) in
            var pending = buffers.filter { $0.count > 0 }
            while !pending.isEmpty {
                let n = Self.sendmsg(fd, pending, flags: Int32(MSG_NOSIGNAL) | (more ? Int32(MSG_MORE) : 0))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TransportError("send: \(String(cString: strerror(errno)))")
                }
                Self.drop(n, from: &pending)
            }
        }
    }

    public func sendWithoutWaiting(_ buffers: [UnsafeRawBufferPointer]) throws(TransportError) -> Int {
        try withSocket { fd throws(TransportError) in
            while true {
                let n = Self.sendmsg(fd, buffers.filter { $0.count > 0 }, flags: Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                if n >= 0 { return n }
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
                throw TransportError("send: \(String(cString: strerror(errno)))")
            }
        }
    }

    public func shutdownSending() { socket.shutdownSending() }

    public func close() { socket.close() }

    public var splicing: (any SplicingStream)? { self }

    public func receiveSpliced(_ count: Int, prefix: [UInt8]) throws(TransportError) -> SplicedReceive? {
        try withSocket { fd throws(TransportError) in
            try SplicedReceive.receive(count, prefix: prefix, from: fd) { buffer throws(TransportError) in
                var done = 0
                while done < buffer.count {
                    let n = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
                    if n > 0 { done += n; continue }
                    if n == 0 { throw TransportError(TransportError.closedByPeer) }
                    if errno == EINTR { continue }
                    throw TransportError("recv: \(String(cString: strerror(errno)))")
                }
            }
        }
    }

    public func sendSpliced(head: UnsafeRawBufferPointer, _ data: SplicedRead) throws(TransportError) {
        try send([head], more: true)
        try withSocket { fd throws(TransportError) in try data.send(to: fd, more: false) }
    }

    /// One `sendmsg` of `buffers` (a gather write; at most 1024 of them, the kernel's UIO_MAXIOV).
    private static func sendmsg(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], flags: Int32) -> Int {
        var vectors = buffers.prefix(1024).map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        return vectors.withUnsafeMutableBufferPointer { iov -> Int in
            var message = msghdr()
            message.msg_iov = iov.baseAddress
            message.msg_iovlen = iov.count
            return Glibc.sendmsg(fd, &message, flags)
        }
    }

    /// Drops the first `count` bytes of `buffers`.
    private static func drop(_ count: Int, from buffers: inout [UnsafeRawBufferPointer]) {
        var written = count
        while written > 0, let first = buffers.first {
            if written >= first.count {
                written -= first.count
                buffers.removeFirst()
            } else {
                buffers[0] = UnsafeRawBufferPointer(rebasing: first[written...])
                written = 0
            }
        }
    }
}

func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
    var v = value
    _ = setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
}
