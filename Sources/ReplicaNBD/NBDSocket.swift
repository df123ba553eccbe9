#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReplicaCore
import CReplicaLinux
import ReplicaTransportTCP

/// A blocking stream socket of the NBD server, used from its dedicated threads only: a plain
/// socket (``TCPStream``, which also serves Unix sockets), upgraded to TLS by
/// ``startTLS(context:timeoutMilliseconds:)`` during the handshake. The descriptor has one
/// owner: a close from any thread (the server's `stop`) wakes a blocked read, and the number is
/// never reused while a call on it runs.
final class NBDSocket: @unchecked Sendable {
    private let plain: TCPStream
    // Replaced once, by startTLS in the handshake thread, before the transmission's threads
    // start (they are started after it, so they see the upgraded stream).
    private var stream: any ByteStream

    /// Why reading or writing stopped.
    struct Closed: Error, CustomStringConvertible {
        var description: String
    }

    init(descriptor: Int32) {
        plain = TCPStream(descriptor: descriptor)
        stream = plain
    }

    /// True once the connection runs over TLS.
    private(set) var isTLS = false

    /// Upgrades the connection to TLS as the server (NBD_OPT_STARTTLS, after its ACK).
    func startTLS(context: TLSContext, timeoutMilliseconds: Int32) throws(Closed) {
        do {
            stream = try TLSServerHandshake.upgrade(plain, context: context, timeoutMilliseconds: timeoutMilliseconds)
            isTLS = true
        } catch {
            throw Closed(description: error.description)
        }
    }

    private static func closed(_ error: TransportError) -> Closed {
        Closed(description: error.isClosedByPeer ? "client closed the connection" : error.description)
    }

    /// Reads exactly `count` bytes.
    func read(_ count: Int) throws(Closed) -> [UInt8] {
        try [UInt8](filling: count, by: readExactly)
    }

    /// Fills `buffer` completely.
    func readExactly(_ buffer: UnsafeMutableRawBufferPointer) throws(Closed) {
        var done = 0
        while done < buffer.count {
            done += try receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
        }
    }

    /// One receive into `buffer`: the number of bytes read (at least one), waiting for them.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Closed) -> Int {
        do {
            return try stream.receive(into: buffer)
        } catch {
            throw Self.closed(error)
        }
    }

    /// Writes all of `buffers` (repeated until done). Callers serialize.
    func write(_ buffers: [[UInt8]]) throws(Closed) {
        _ = try write(buffers, waiting: true)
    }

    /// Writes `buffers` with gather writes; without `waiting`, stops when the socket's buffer
    /// is full and returns what is left (empty when everything went out). Callers serialize.
    func write(_ buffers: [[UInt8]], waiting: Bool) throws(Closed) -> [[UInt8]] {
        let pending = buffers.filter { !$0.isEmpty }
        guard !pending.isEmpty else { return [] }
        let stream = self.stream
        let sent: Int
        do {
            sent = try pending.withUnsafeBufferPointers { vectors in
                let raw = vectors.map { UnsafeRawBufferPointer($0) }
                return Result { () throws(TransportError) -> Int in
                    if waiting {
                        try stream.send(raw, more: false)
                        return raw.reduce(0) { $0 + $1.count }
                    }
                    return try stream.sendWithoutWaiting(raw)
                }
            }.get()
        } catch {
            throw Self.closed(error)
        }
        var left = sent
        var rest = pending
        while left > 0, let first = rest.first {
            if left >= first.count {
                left -= first.count
                rest.removeFirst()
            } else {
                rest[0] = Array(first[left...])
                left = 0
            }
        }
        return rest
    }

    /// Shuts both directions down (a blocked reader wakes) and closes, once.
    func close() { plain.close() }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with pointers to every element's bytes.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafeBufferPointer<UInt8>]) -> R) -> R {
        func nest(_ index: Int, _ collected: [UnsafeBufferPointer<UInt8>]) -> R {
            guard index < count else { return body(collected) }
            return self[index].withUnsafeBufferPointer { nest(index + 1, collected + [$0]) }
        }
        return nest(0, [])
    }
}

/// A listening socket: a Unix path (mode 0600; a stale file is replaced only when nothing
/// answers on it) or a TCP address. ``accept()`` waits in the kernel until a client comes or
/// the listener is closed (a shutdown wakes it), without polling.
final class NBDListener: @unchecked Sendable {
    private let listening: OwnedDescriptor
    let description: String
    private let unixPath: String?
    private let tcp: Bool

    private init(descriptor: Int32, description: String, unixPath: String?, tcp: Bool = false) {
        listening = OwnedDescriptor(descriptor)
        self.description = description
        self.unixPath = unixPath
        self.tcp = tcp
    }

    static func unix(_ path: String) throws -> NBDListener {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw NBDSocket.Closed(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        if FileManager.default.fileExists(atPath: path) {
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let answered = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
            }
            Glibc.close(probe)
            if answered { throw NBDSocket.Closed(description: "something already serves \(path)") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NBDSocket.Closed(description: "socket: \(String(cString: strerror(errno)))") }
        let previous = umask(0o177)
        defer { umask(previous) }
        let rc = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw NBDSocket.Closed(description: "listen on \(path): \(message)")
        }
        return NBDListener(descriptor: fd, description: path, unixPath: path)
    }

    /// Listens on TCP at `endpoint` (IPv4 or IPv6; the address is reused at once after a
    /// restart). Clients get TCP_NODELAY: NBD replies are small and latency matters.
    static func tcp(_ endpoint: TCPEndpoint) throws -> NBDListener {
        NBDListener(descriptor: try endpoint.listeningSocket(backlog: 16), description: "\(endpoint.address)", unixPath: nil, tcp: true)
    }

    /// The next client, waiting for one; nil once the listener was closed.
    func accept() -> NBDSocket? {
        while true {
            guard let fd = listening.use({ CReplicaLinux_accept_cloexec($0) }) else { return nil }
            if fd >= 0 {
                if tcp {
                    var one: Int32 = 1
                    _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                }
                return NBDSocket(descriptor: fd)
            }
            if listening.isClosed || errno == EINVAL { return nil }
            if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                // Out of descriptors: wait a little rather than spin (the clients in service
                // free theirs as they go).
                usleep(10_000)
            }
        }
    }

    /// Stops listening (a waiting ``accept()`` returns nil) and removes the socket file.
    func close() {
        listening.close()
        if let unixPath { unlink(unixPath) }
    }
}
