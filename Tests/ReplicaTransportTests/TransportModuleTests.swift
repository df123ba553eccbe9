#if canImport(Glibc)
import Glibc
#endif
import Testing
import ReplicaCore
import ReplicaNBD
import ReplicaTransportRDMA
import ReplicaTransportTCP

@Suite("Transport modules")
struct TransportModuleTests {
    @Test(arguments: [("ipv4", "127.0.0.1"), ("ipv6", "::1")])
    func endpointsBindOnLoopback(family: String, host: String) throws {
        let endpoint = try TCPEndpoint(NetworkAddress(family: family, host: host, port: 0))
        let fd = socket(endpoint.domain, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        let result = try endpoint.withSocketAddress { address, length in bind(fd, address, length) }
        if family == "ipv6", result != 0 { return }  // a kernel without IPv6 on loopback
        #expect(result == 0)
    }

    @Test func endpointRefusesWhatTCPCannotUse() {
        #expect(throws: TCPEndpoint.EndpointError.unsupportedFamily("sdp")) {
            try TCPEndpoint(NetworkAddress(family: "sdp", host: "10.0.0.1", port: 7788))
        }
        #expect(throws: TCPEndpoint.EndpointError.invalidAddress("10.0.0.300")) {
            try TCPEndpoint(NetworkAddress(family: "ipv4", host: "10.0.0.300", port: 7788))
        }
        #expect(throws: TCPEndpoint.EndpointError.unknownZone("nosuchif0")) {
            try TCPEndpoint(NetworkAddress(family: "ipv6", host: "fe80::1%nosuchif0", port: 7788))
        }
    }

    @Test func aLinkLocalAddressCarriesItsInterface() throws {
        // `fe80::1%lo`: the zone becomes the socket address's scope id (the interface index).
        for zone in ["lo", String(if_nametoindex("lo"))] {
            let endpoint = try TCPEndpoint(NetworkAddress(family: "ipv6", host: "fe80::1%\(zone)", port: 7788))
            let scope = try endpoint.withSocketAddress { address, length in
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_scope_id }
            }
            #expect(scope == if_nametoindex("lo") && scope != 0)
        }
    }

    @Test func openSSLIsLinked() {
        #expect(TLSLibrary.version.hasPrefix("OpenSSL 3"))
        #expect(TLSLibrary.versionNumber >= 0x3000_0000)
    }

    @Test func rdmaTraitMatchesTheBuild() {
        #if RDMA
        #expect(RDMASupport.isCompiledIn)
        #else
        #expect(!RDMASupport.isCompiledIn)
        #expect(RDMASupport.deviceNames().isEmpty)
        #endif
    }

    @Test func nbdRequestHeaderDecoding() throws {
        let bytes: [UInt8] = [0x25, 0x60, 0x95, 0x13, 0x00, 0x01, 0x00, 0x01] + [0, 0, 0, 0, 0, 0, 0, 9]
            + [0, 0, 0, 0, 0, 0, 0x10, 0] + [0, 0, 0x10, 0]
        let header = try NBDRequestHeader(bytes: bytes)
        #expect(header.command == .write && header.flags == 1 && header.cookie == 9 && header.offset == 4096 && header.length == 4096)
        #expect(throws: NBDRequestHeader.DecodeError.truncated(3)) { try NBDRequestHeader(bytes: [1, 2, 3]) }
        var bad = bytes
        bad[0] = 0
        #expect(throws: NBDRequestHeader.DecodeError.self) { try NBDRequestHeader(bytes: bad) }
        var unknown = bytes
        unknown[7] = 99
        #expect(try NBDRequestHeader(bytes: unknown).command == nil)
    }
}
