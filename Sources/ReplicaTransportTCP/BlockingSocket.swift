#if canImport(Glibc)
import Glibc
#endif
import ReplicaCore

/// A blocking TCP socket, used from dedicated threads only (never from Swift's cooperative
/// pool). Thin wrappers over the system calls that turn failures into ``TransportError``.
final class BlockingSocket: @unchecked Sendable {
    // The descriptor is written once at init and at close (under `closeLock`); reads and writes
    // on it happen from one receive thread and from senders serialized by their channel lock.
    private(set) var descriptor: Int32
    private let closeLock = NSLockShim()

    init(descriptor: Int32) { self.descriptor = descriptor }

    /// A new socket for `endpoint`'s family.
    static func make(for endpoint: TCPEndpoint) throws(TransportError) -> BlockingSocket {
        let fd = socket(endpoint.domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TransportError("socket(): \(String(cString: strerror(errno)))") }
        return BlockingSocket(descriptor: fd)
    }

    /// A socket listening on `endpoint`.
    static func listening(on endpoint: TCPEndpoint) throws(TransportError) -> BlockingSocket {
        BlockingSocket(descriptor: try endpoint.listeningSocket(backlog: 8))
    }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        _ = setsockopt(descriptor, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// TCP_NODELAY, SO_KEEPALIVE and the configured buffer sizes (0 = kernel autotuning).
    func configure(noDelay: Bool, sendBuffer: Int, receiveBuffer: Int) {
        if noDelay { setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        setOption(SOL_SOCKET, SO_KEEPALIVE, 1)
        if sendBuffer > 0 { setOption(SOL_SOCKET, SO_SNDBUF, Int32(sendBuffer)) }
        if receiveBuffer > 0 { setOption(SOL_SOCKET, SO_RCVBUF, Int32(receiveBuffer)) }
    }

    /// Waits up to `milliseconds` for a connection; nil on timeout.
    func accept(timeoutMilliseconds: Int32) throws(TransportError) -> BlockingSocket? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeoutMilliseconds)
        if ready < 0, errno != EINTR { throw TransportError("poll: \(String(cString: strerror(errno)))") }
        guard ready > 0 else { return nil }
        let fd = Glibc.accept(descriptor, nil, nil)
        guard fd >= 0 else {
            if errno == EINTR || errno == EAGAIN || errno == ECONNABORTED { return nil }
            throw TransportError("accept: \(String(cString: strerror(errno)))")
        }
        return BlockingSocket(descriptor: fd)
    }

    /// Connects from `local` (so the peer sees the configured address) to `remote`, giving up
    /// after `timeoutMilliseconds`.
    func connect(from local: TCPEndpoint, to remote: TCPEndpoint, timeoutMilliseconds: Int32) throws(TransportError) {
        setOption(SOL_SOCKET, SO_REUSEADDR, 1)
        var unbound = local.address
        unbound.port = 0
        let source = try? TCPEndpoint(unbound)
        if let source {
            _ = try? source.withSocketAddress { address, length in bind(descriptor, address, length) }
        }
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        let rc: Int32
        do {
            rc = try remote.withSocketAddress { address, length in Glibc.connect(descriptor, address, length) }
        } catch {
            throw TransportError("connect \(remote.address): \(error)")
        }
        if rc != 0 {
            guard errno == EINPROGRESS else { throw TransportError("connect \(remote.address): \(String(cString: strerror(errno)))") }
            var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, timeoutMilliseconds) > 0 else { throw TransportError("connect \(remote.address): timed out") }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { throw TransportError("connect \(remote.address): \(String(cString: strerror(error)))") }
        }
        _ = fcntl(descriptor, F_SETFL, flags)
    }

    /// Reads exactly `buffer.count` bytes.
    func readExactly(_ buffer: UnsafeMutableRawBufferPointer) throws(TransportError) {
        var done = 0
        while done < buffer.count {
            done += try receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
        }
    }

    /// One `recv` into `buffer`, waiting for data: the number of bytes read (at least one).
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        while true {
            let n = recv(descriptor, buffer.baseAddress!, buffer.count, 0)
            if n > 0 { return n }
            if n == 0 { throw TransportError(TransportError.closedByPeer) }
            if errno == EINTR { continue }
            throw TransportError("recv: \(String(cString: strerror(errno)))")
        }
    }

    /// Runs `body` with the socket's descriptor (for calls this type does not wrap, as `splice`).
    func withDescriptor<Value>(_ body: (Int32) throws(TransportError) -> Value) throws(TransportError) -> Value {
        try body(descriptor)
    }

    /// Writes all of the buffers with as few `sendmsg` calls as possible (gather write).
    /// `more`: more data follows at once (`MSG_MORE`: a partial packet may wait for it).
    func writeAll(_ buffers: [UnsafeRawBufferPointer], more: Bool = false) throws(TransportError) {
        var pending = buffers.filter { $0.count > 0 }
        while !pending.isEmpty {
            var vectors = pending.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
            let n = vectors.withUnsafeMutableBufferPointer { iov -> Int in
                var message = msghdr()
                message.msg_iov = iov.baseAddress
                message.msg_iovlen = iov.count
                return sendmsg(descriptor, &message, Int32(MSG_NOSIGNAL) | (more ? Int32(MSG_MORE) : 0))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw TransportError("send: \(String(cString: strerror(errno)))")
            }
            var written = n
            while written > 0, let first = pending.first {
                if written >= first.count {
                    written -= first.count
                    pending.removeFirst()
                } else {
                    pending[0] = UnsafeRawBufferPointer(rebasing: first[written...])
                    written = 0
                }
            }
        }
    }

    /// One `send` of `bytes` that does not wait: the number of bytes the socket took (zero when
    /// its buffer is full).
    func sendWithoutWaiting(_ bytes: UnsafeRawBufferPointer) throws(TransportError) -> Int {
        while true {
            let n = Glibc.send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
            throw TransportError("send: \(String(cString: strerror(errno)))")
        }
    }

    /// Sends FIN after the data already written; reading goes on until the peer ends too.
    func shutdownWrite() {
        closeLock.withLock {
            guard descriptor >= 0 else { return }
            shutdown(descriptor, Int32(SHUT_WR))
        }
    }

    /// Shuts the socket down (waking a blocked reader) and closes it once.
    func close() {
        closeLock.withLock {
            guard descriptor >= 0 else { return }
            shutdown(descriptor, Int32(SHUT_RDWR))
            Glibc.close(descriptor)
            descriptor = -1
        }
    }

    deinit { close() }
}
