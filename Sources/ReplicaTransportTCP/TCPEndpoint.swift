#if canImport(Glibc)
import Glibc
#endif
import ReplicaCore

/// A socket address built from a configuration ``NetworkAddress`` (`ipv4` or `ipv6`).
///
/// The TCP transport of the replication engine connects and listens on these; this type is
/// where a configured address becomes a kernel `sockaddr`.
public struct TCPEndpoint: Sendable, Equatable {
    /// The address as configured.
    public let address: NetworkAddress

    /// Errors turning a configured address into a socket address.
    public enum EndpointError: Error, Equatable, CustomStringConvertible {
        /// The family is not one TCP can use (sdp, ssocks, ib).
        case unsupportedFamily(String)
        /// `inet_pton` refused the text.
        case invalidAddress(String)
        /// A link-local address's zone (`%eth0`) names no interface of this host.
        case unknownZone(String)

        public var description: String {
            switch self {
            case .unsupportedFamily(let family): "address family '\(family)' is not supported by the TCP transport (use ipv4 or ipv6)"
            case .invalidAddress(let text): "'\(text)' is not a numeric IP address"
            case .unknownZone(let zone): "'\(zone)' in an IPv6 address's '%zone' is not an interface of this host"
            }
        }
    }

    /// Checks that the address can be used by TCP.
    public init(_ address: NetworkAddress) throws(EndpointError) {
        guard address.family == "ipv4" || address.family == "ipv6" else { throw .unsupportedFamily(address.family) }
        self.address = address
        _ = try withSocketAddress { _, _ in () }
    }

    /// Calls `body` with a `sockaddr` for this endpoint and its length.
    public func withSocketAddress<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(EndpointError) -> R) throws(EndpointError) -> R {
        if address.family == "ipv4" {
            var storage = sockaddr_in()
            storage.sin_family = sa_family_t(AF_INET)
            storage.sin_port = in_port_t(UInt16(address.port).bigEndian)
            guard inet_pton(AF_INET, address.host, &storage.sin_addr) == 1 else { throw .invalidAddress(address.host) }
            return try withUnsafePointer(to: &storage) { pointer throws(EndpointError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(EndpointError) in
                    try body(raw, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        var storage = sockaddr_in6()
        storage.sin6_family = sa_family_t(AF_INET6)
        storage.sin6_port = in_port_t(UInt16(address.port).bigEndian)
        // A link-local address carries its zone: `fe80::1%eth0` (an interface name or number).
        let parts = address.host.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        guard inet_pton(AF_INET6, String(parts[0]), &storage.sin6_addr) == 1 else { throw .invalidAddress(address.host) }
        if parts.count == 2 {
            let zone = String(parts[1])
            let index = UInt32(zone) ?? if_nametoindex(zone)
            guard index != 0 else { throw .unknownZone(zone) }
            storage.sin6_scope_id = index
        }
        return try withUnsafePointer(to: &storage) { pointer throws(EndpointError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(EndpointError) in
                try body(raw, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }

    /// The socket domain (`AF_INET` or `AF_INET6`).
    public var domain: Int32 { address.family == "ipv4" ? AF_INET : AF_INET6 }

    /// A new socket listening here (SO_REUSEADDR, IPv6 only for an IPv6 address, close on
    /// exec); the caller owns the descriptor. Used by the replication transport and by the
    /// NBD server's TCP exports.
    public func listeningSocket(backlog: Int32) throws(TransportError) -> Int32 {
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TransportError("socket(): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if domain == AF_INET6 { _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = (try? withSocketAddress { address, length in bind(fd, address, length) }) ?? -1
        guard bound == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TransportError("bind \(address): \(message)")
        }
        guard listen(fd, backlog) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TransportError("listen \(address): \(message)")
        }
        return fd
    }
}
