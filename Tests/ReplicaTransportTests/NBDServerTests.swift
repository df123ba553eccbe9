#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import ReplicaCore
@testable import ReplicaNBD

@Suite("NBD server")
struct NBDServerTests {
    @Test func infoRequestsAreParsedAndBounded() {
        let good: [UInt8] = [0, 0, 0, 2] + Array("r0".utf8) + [0, 2, 0, 1, 0, 3]
        #expect(NBDHandshake.parseInfoRequest(good).map { $0.0 } == "r0")
        #expect(NBDHandshake.parseInfoRequest(good).map { $0.1 } == [1, 3])
        #expect(NBDHandshake.parseInfoRequest([0, 0, 0, 9, 1, 2]) == nil, "name longer than the data")
        #expect(NBDHandshake.parseInfoRequest(good.dropLast()) .map { _ in true } == nil, "count does not match")
        #expect(NBDHandshake.parseInfoRequest([0, 0]) == nil)
    }

    @Test func requestsAreSplitIntoEnginePieces() {
        let pieces = ReplicatedVolumeBackend.split(4096, 3 << 20, 1 << 20)
        let mib: Int64 = 1 << 20
        let expected: [Range<Int64>] = [4096..<(4096 + mib), (4096 + mib)..<(4096 + 2 * mib), (4096 + 2 * mib)..<(4096 + 3 * mib)]
        #expect(pieces == expected)
        #expect(ReplicatedVolumeBackend.split(0, 512, 1 << 20) == [0..<512])
    }

    /// A minimal client over the Unix socket.
    final class Client {
        let fd: Int32
        init(_ path: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: Array(path.utf8))
                raw[path.utf8.count] = 0
            }
            let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            guard rc == 0 else { throw NBDSocket.Closed(description: "connect") }
        }
        deinit { close(fd) }
        func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        func receive(_ count: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + done, count - done, 0) }
                if n <= 0 { return Array(out[..<done]) }
                done += n
            }
            return out
        }
        func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        func number(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }

        /// Handshake with GO on the default export; returns the size.
        func go() -> UInt64 {
            _ = receive(18)
            send(be(UInt32(3)))
            send(be(NBDProtocol.optionMagic) + be(UInt32(7)) + be(UInt32(6)) + be(UInt32(0)) + be(UInt16(0)))
            var size: UInt64 = 0
            while true {
                let header = receive(20)
                let type = UInt32(number(header[12..<16])), length = Int(number(header[16..<20]))
                let data = receive(length)
                if type == NBDProtocol.Reply.info.rawValue, number(data[0..<2]) == 0 { size = number(data[2..<10]) }
                if type == NBDProtocol.Reply.ack.rawValue { return size }
            }
        }

        /// Sends a request; returns (error, cookie) of the simple reply and the read data.
        func request(_ command: UInt16, offset: UInt64, length: UInt32, flags: UInt16 = 0, cookie: UInt64, data: [UInt8] = []) {
            send(be(NBDProtocol.requestMagic) + be(flags) + be(command) + be(cookie) + be(offset) + be(length) + data)
        }
        func reply(reading: Int = 0) -> (error: UInt32, cookie: UInt64, data: [UInt8]) {
            let header = receive(16)
            let error = UInt32(number(header[4..<8]))
            return (error, number(header[8..<16]), error == 0 ? receive(reading) : [])
        }
    }

    @Test func aClientWritesReadsAndGetsTheSpecsErrors() throws {
        let disk = MemoryBlockTarget(size: 1 << 20)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nbd-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let server = try NBDServer(source: FixedExport(name: "mem", backend: BlockTargetBackend(disk)), unixSocket: path)
        server.start()
        defer { server.stop() }
        let client = try Client(path)
        #expect(client.go() == 1 << 20)
        let block = [UInt8](repeating: 0xA7, count: 8192)
        client.request(1, offset: 4096, length: 8192, flags: NBDProtocol.CommandFlag.fua, cookie: 1, data: block)
        #expect(client.reply().error == 0)
        client.request(0, offset: 4096, length: 8192, cookie: 2)
        let read = client.reply(reading: 8192)
        #expect(read.error == 0 && read.cookie == 2 && read.data == block)
        #expect(try disk.read(count: 8192, at: 4096) == block)
        client.request(0, offset: 100, length: 512, cookie: 3)
        #expect(client.reply().error == NBDProtocol.Errno.einval)
        client.request(1, offset: (1 << 20) - 512, length: 1024, cookie: 4, data: [UInt8](repeating: 1, count: 1024))
        #expect(client.reply().error == NBDProtocol.Errno.enospc)
        client.request(6, offset: (1 << 20) - 512, length: 1024, cookie: 7)
        #expect(client.reply().error == NBDProtocol.Errno.enospc, "WRITE_ZEROES past the end is a write past the end")
        client.request(0, offset: 4096, length: 512, flags: NBDProtocol.CommandFlag.fua, cookie: 8)
        #expect(client.reply(reading: 512) == (0, 8, Array(block.prefix(512))), "FUA is advertised: READ accepts it")
        client.request(3, offset: 0, length: 0, flags: NBDProtocol.CommandFlag.fua, cookie: 9)
        #expect(client.reply() == (0, 9, []), "FUA is advertised: FLUSH accepts it")
        client.request(3, offset: 0, length: 0, cookie: 5)
        #expect(client.reply() == (0, 5, []))
        #expect(server.openClients == 1)
        client.request(2, offset: 0, length: 0, cookie: 6)
        #expect(client.receive(1).isEmpty, "DISC ends the connection")
    }
}
