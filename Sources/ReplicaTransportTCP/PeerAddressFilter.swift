#if canImport(Glibc)
import Glibc
#endif
import Logging
import ReplicaCore
import Synchronization

/// Only the configured peer: an incoming replication connection whose source address is not
/// the peer's configured address is closed before anything is read (DRBD does the same:
/// "Closing unexpected connection"). The peer's dialling side binds to its own configured
/// address, so its connections always come from it. Refusals are logged once a minute per
/// source address, so that a scanner cannot fill the log.
final class PeerAddressFilter: Sendable {
    /// The peer's address bytes (4 for IPv4, 16 for IPv6; a link-local zone is not compared).
    private let expected: [UInt8]
    private let expectedText: String
    private let logged = Mutex<[String: UInt64]>([:])
    private let logger = Logger(label: "replica.tcp")

    /// Seconds between two log lines about the same source address.
    static let logIntervalSeconds: UInt64 = 60
    /// Source addresses remembered for rate limiting at most (the oldest go first).
    static let rememberedAddresses = 1024

    init(peer: TCPEndpoint) {
        expectedText = peer.address.host
        expected = (try? peer.withSocketAddress { address, _ in Self.addressBytes(address) }) ?? []
    }

    /// True when `descriptor`'s remote end is the peer; otherwise logs (rate-limited) and
    /// returns false (the caller closes it).
    func admits(_ descriptor: Int32) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) == 0 }
        }
        guard found else { return false }
        let bytes = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Self.addressBytes($0) }
        }
        if !expected.isEmpty, bytes == expected { return true }
        note(Self.text(bytes))
        return false
    }

    private func note(_ source: String) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let seconds = UInt64(now.tv_sec)
        let due = logged.withLock { logged -> Bool in
            if let last = logged[source], seconds - last < Self.logIntervalSeconds { return false }
            if logged.count >= Self.rememberedAddresses, let oldest = logged.min(by: { $0.value < $1.value })?.key { logged[oldest] = nil }
            logged[source] = seconds
            return true
        }
        if due {
            logger.warning("closing unexpected connection from \(source): the peer's configured address is \(expectedText) (logged once a minute per address)")
        }
    }

    /// The address bytes of an IPv4 or IPv6 socket address (an IPv4-mapped IPv6 address as IPv4).
    static func addressBytes(_ address: UnsafePointer<sockaddr>) -> [UInt8] {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
        case AF_INET6:
            let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
            let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]
            return Array(bytes.prefix(12)) == mappedPrefix ? Array(bytes.suffix(4)) : bytes
        default:
            return []
        }
    }

    /// `bytes` written as an address.
    static func text(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16 else { return "an unknown address" }
        let written = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return "an unknown address" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
