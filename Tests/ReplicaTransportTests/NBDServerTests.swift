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

        /// Sends option `option` with `data`; returns its replies (type, data) up to the final
        /// one (an ACK or an error).
        func option(_ option: UInt32, _ data: [UInt8] = []) -> [(type: UInt32, data: [UInt8])] {
            send(be(NBDProtocol.optionMagic) + be(option) + be(UInt32(data.count)) + data)
            var replies: [(type: UInt32, data: [UInt8])] = []
            while true {
                let header = receive(20)
                guard header.count == 20 else { return replies }
                let type = UInt32(number(header[12..<16])), length = Int(number(header[16..<20]))
                replies.append((type, receive(length)))
                if type == NBDProtocol.Reply.ack.rawValue || type & 0x8000_0000 != 0 { return replies }
            }
        }

        /// The data of a LIST/SET_META_CONTEXT option: export name "", then `queries`.
        func metaContextData(_ queries: [String]) -> [UInt8] {
            be(UInt32(0)) + be(UInt32(queries.count)) + queries.flatMap { be(UInt32($0.utf8.count)) + Array($0.utf8) }
        }

        /// Reads one structured reply chunk: (flags, type, cookie, payload).
        func chunk() -> (flags: UInt16, type: UInt16, cookie: UInt64, payload: [UInt8]) {
            let header = receive(20)
            #expect(number(header[0..<4]) == UInt64(NBDProtocol.structuredReplyMagic))
            return (UInt16(number(header[4..<6])), UInt16(number(header[6..<8])), number(header[8..<16]), receive(Int(number(header[16..<20]))))
        }

        /// Reads the greeting and sends the client flags (fixed newstyle, no zeroes).
        func greet() {
            _ = receive(18)
            send(be(UInt32(3)))
        }

        /// Handshake with GO on the default export; returns the size.
        func go(greeted: Bool = false) -> UInt64 {
            if !greeted { greet() }
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

    /// A sparse file in a folder whose file system reports holes (tmpfs where there is one).
    static func sparseFile(size: Int64, data ranges: [Range<Int64>]) throws -> String {
        let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : FileManager.default.temporaryDirectory.path
        let path = "\(folder)/nbd-map-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).img"
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size))
        for range in ranges {
            try handle.seek(toOffset: UInt64(range.lowerBound))
            handle.write(Data(repeating: 0x5C, count: Int(range.count)))
        }
        try handle.close()
        return path
    }

    @Test("BLOCK_STATUS with base:allocation: holes of a sparse file as HOLE|ZERO, data as 0, REQ_ONE gives one descriptor, errors as the spec says")
    func blockStatusReportsHolesAndData() throws {
        let mib: Int64 = 1 << 20
        let path = try Self.sparseFile(size: 4 * mib, data: [mib..<(mib + 65536), (3 * mib)..<(3 * mib + mib / 2)])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let disk = try FileBlockTarget(path: path)
        #expect(try disk.allocation(at: 0, length: 4 * mib) == [
            AllocationExtent(length: mib, isHole: true), AllocationExtent(length: 65536, isHole: false),
            AllocationExtent(length: 2 * mib - 65536, isHole: true), AllocationExtent(length: mib / 2, isHole: false),
            AllocationExtent(length: mib / 2, isHole: true),
        ])
        #expect(try disk.allocation(at: mib + 4096, length: 8192) == [AllocationExtent(length: 8192, isHole: false)], "a range inside data")
        #expect(try disk.allocation(at: 3 * mib + mib / 2 - 4096, length: 8192) == [
            AllocationExtent(length: 4096, isHole: false), AllocationExtent(length: 4096, isHole: true),
        ], "a range across the end of data")

        let socketPath = FileManager.default.temporaryDirectory.appendingPathComponent("nbd-map-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let server = try NBDServer(source: FixedExport(name: "map", backend: BlockTargetBackend(disk)), unixSocket: socketPath)
        server.start()
        defer { server.stop() }

        // Negotiation: meta contexts need structured replies first; LIST lists base:allocation
        // for no query and for "base:", SET selects it by its full name only.
        let client = try Client(socketPath)
        client.greet()
        let early = client.option(10, client.metaContextData([NBDProtocol.BaseAllocation.name]))
        #expect(early.map(\.type) == [NBDProtocol.Reply.errorInvalid.rawValue], "SET_META_CONTEXT before STRUCTURED_REPLY")
        #expect(client.option(8).map(\.type) == [NBDProtocol.Reply.ack.rawValue])
        for query in [[], ["base:"], ["base:allocation"]] {
            let listed = client.option(9, client.metaContextData(query))
            #expect(listed.map(\.type) == [NBDProtocol.Reply.metaContext.rawValue, NBDProtocol.Reply.ack.rawValue], "LIST \(query)")
            #expect(Array(listed[0].data.dropFirst(4)) == Array("base:allocation".utf8))
        }
        #expect(client.option(9, client.metaContextData(["qemu:dirty-bitmap:x"])).map(\.type) == [NBDProtocol.Reply.ack.rawValue])
        #expect(client.option(10, client.metaContextData(["base:"])).map(\.type) == [NBDProtocol.Reply.ack.rawValue], "a namespace alone selects nothing")
        let bad = client.option(10, client.be(UInt32(0)) + client.be(UInt32(2)) + client.be(UInt32(5)) + Array("base:".utf8))
        #expect(bad.map(\.type) == [NBDProtocol.Reply.errorInvalid.rawValue], "a query announced and missing")
        let selected = client.option(10, client.metaContextData([NBDProtocol.BaseAllocation.name]))
        #expect(selected.map(\.type) == [NBDProtocol.Reply.metaContext.rawValue, NBDProtocol.Reply.ack.rawValue])
        #expect(client.number(selected[0].data[0..<4]) == UInt64(NBDProtocol.BaseAllocation.contextID))
        #expect(client.go(greeted: true) == UInt64(4 * mib))

        func descriptors(_ payload: [UInt8]) -> [(UInt64, UInt64)] {
            #expect(client.number(payload[0..<4]) == UInt64(NBDProtocol.BaseAllocation.contextID))
            return stride(from: 4, to: payload.count, by: 8).map { (client.number(payload[$0..<($0 + 4)]), client.number(payload[($0 + 4)..<($0 + 8)])) }
        }
        client.request(7, offset: 0, length: UInt32(4 * mib), cookie: 11)
        let whole = client.chunk()
        #expect(whole.flags == NBDProtocol.ChunkType.done && whole.type == NBDProtocol.ChunkType.blockStatus && whole.cookie == 11)
        let expected: [(UInt64, UInt64)] = [(UInt64(mib), 3), (65536, 0), (UInt64(2 * mib - 65536), 3), (UInt64(mib / 2), 0), (UInt64(mib / 2), 3)]
        #expect(descriptors(whole.payload).map { [$0.0, $0.1] } == expected.map { [$0.0, $0.1] })

        client.request(7, offset: UInt64(mib / 2), length: UInt32(mib), flags: NBDProtocol.CommandFlag.requestOne, cookie: 12)
        let one = client.chunk()
        #expect(descriptors(one.payload).map { [$0.0, $0.1] } == [[UInt64(mib / 2), 3]], "REQ_ONE: the first descriptor only, within the request")

        // Writing fills a hole; the next query sees it.
        client.request(1, offset: 0, length: 4096, cookie: 13, data: [UInt8](repeating: 1, count: 4096))
        #expect(client.reply().error == 0)
        client.request(7, offset: 0, length: 8192, cookie: 14)
        #expect(descriptors(client.chunk().payload).map { [$0.0, $0.1] } == [[4096, 0], [4096, 3]])

        // Past the end, zero length, unknown flags: EINVAL in an error chunk.
        for (offset, length, flags, cookie) in [(UInt64(4 * mib - 4096), UInt32(8192), UInt16(0), UInt64(15)), (0, 0, 0, 16), (0, 4096, UInt16(1 << 2), 17)] {
            client.request(7, offset: offset, length: length, flags: flags, cookie: cookie)
            let error = client.chunk()
            #expect(error.type == NBDProtocol.ChunkType.error && error.cookie == cookie, "BLOCK_STATUS \(offset)+\(length) flags \(flags)")
            #expect(client.number(error.payload[0..<4]) == UInt64(NBDProtocol.Errno.einval))
        }

        // Without SET_META_CONTEXT, BLOCK_STATUS is EINVAL.
        let plain = try Client(socketPath)
        #expect(plain.go() == UInt64(4 * mib))
        plain.request(7, offset: 0, length: 4096, cookie: 21)
        #expect(plain.reply() == (NBDProtocol.Errno.einval, 21, []))
    }
}
