import Foundation
import Testing
import ReplicaCore
import ReplicaTransportTCP

/// Two nodes in one process, replicating over real TCP connections on 127.0.0.1.
@Suite("Replication over TCP on loopback", .serialized)
struct LoopbackReplicationTests {
    static let size: Int64 = 64 << 20

    struct Pair {
        var directory: String
        var configuration: Configuration
        var alpha: ReplicatedVolume
        var beta: ReplicatedVolume

        func close() {
            alpha.down()
            beta.down()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    func makePair(protocolName: String, port: Int, resyncRate: String = "1G") throws -> Pair {
        let directory = NSTemporaryDirectory() + "replica-loopback-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in ["alpha", "beta"] {
            let path = directory + "/\(name).img"
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(Self.size))
            try handle.close()
            try MetadataDevice.internalMetadata(try FileBlockTarget(path: path), name: path).create(force: false)
        }
        let text = """
            resource r0 {
              net { protocol \(protocolName); connect-int 1; }
              disk { c-plan-ahead 0; resync-rate \(resyncRate); }
              device minor 0; meta-disk internal;
              on alpha { disk \(directory)/alpha.img; address 127.0.0.1:\(port); }
              on beta { disk \(directory)/beta.img; address 127.0.0.2:\(port); }
            }
            """
        let configuration = try ConfigBuilder.load(text: text, file: directory + "/r0.res")
        let alpha = try ReplicatedVolume(configuration: configuration, resource: "r0", node: "alpha",
                                         transport: try TCPTransport.forResource(configuration, "r0", node: "alpha"))
        let beta = try ReplicatedVolume(configuration: configuration, resource: "r0", node: "beta",
                                        transport: try TCPTransport.forResource(configuration, "r0", node: "beta"))
        return Pair(directory: directory, configuration: configuration, alpha: alpha, beta: beta)
    }

    /// Fast pseudo-random bytes (debug builds make per-byte generation slow).
    static func randomBytes(_ count: Int, _ generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            for index in stride(from: 0, to: count - count % 8, by: 8) { raw.storeBytes(of: generator.next(), toByteOffset: index, as: UInt64.self) }
        }
        return bytes
    }

    func dataArea(_ path: String, _ size: Int64) throws -> [UInt8] {
        try FileBlockTarget(path: path, readOnly: true).read(count: Int(size), at: 0)
    }

    @Test(arguments: [("A", 17810), ("B", 17820), ("C", 17830)])
    func fullSyncThenMirroredWrites(protocolName: String, port: Int) throws {
        let pair = try makePair(protocolName: protocolName, port: port)
        defer { pair.close() }
        // Existing data on alpha that the full sync must carry over.
        var generator = SystemRandomNumberGenerator()
        let existing = Self.randomBytes(8 << 20, &generator)
        try FileBlockTarget(path: pair.directory + "/alpha.img").write(existing, at: 0)

        try pair.alpha.up()
        try pair.beta.up()
        #expect(pair.alpha.waitForConnection(timeout: 20))
        #expect(pair.alpha.state.description == "cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent")
        let syncStart = Date()
        try pair.alpha.promote(force: true)
        #expect(pair.alpha.waitForSync(timeout: 60), "\(pair.alpha.state)")
        print("full sync of \(pair.alpha.size >> 20) MiB took \(Date().timeIntervalSince(syncStart)) s")
        let writeStart = Date()
        defer { print("writes took \(Date().timeIntervalSince(writeStart)) s") }
        #expect(pair.beta.waitForSync(timeout: 10), "\(pair.beta.state)")
        #expect(pair.alpha.state.description == "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate")

        // Random writes of mixed sizes through the library API.
        for _ in 0..<400 {
            let blocks = Int.random(in: 1...64, using: &generator)
            let offset = Int64.random(in: 0..<((pair.alpha.size - Int64(blocks * 512)) / 512), using: &generator) * 512
            let bytes = Self.randomBytes(blocks * 512, &generator)
            try pair.alpha.write(bytes, at: offset)
        }
        try pair.alpha.flush()
        // Reading back through the volume gives what the disk holds.
        #expect(try pair.alpha.read(count: 4096, at: 0) == dataArea(pair.directory + "/alpha.img", 4096))
        // Secondary refuses application I/O.
        #expect(throws: BlockIOError.self) { try pair.beta.write([UInt8](repeating: 1, count: 512), at: 0) }

        pair.alpha.down()
        pair.beta.down()
        let size = pair.alpha.size
        #expect(try dataArea(pair.directory + "/alpha.img", size) == dataArea(pair.directory + "/beta.img", size))
    }

    @Test func writesDuringAFullSyncLandOnBothDisks() throws {
        // The source splices its resync blocks from the page cache: a block is sent as the
        // disk is when it leaves, and writes made meanwhile follow it on the data channel.
        let pair = try makePair(protocolName: "C", port: 17840, resyncRate: "24M")
        defer { pair.close() }
        var generator = SystemRandomNumberGenerator()
        try FileBlockTarget(path: pair.directory + "/alpha.img").write(Self.randomBytes(Int(Self.size), &generator), at: 0)
        try pair.alpha.up()
        try pair.beta.up()
        #expect(pair.alpha.waitForConnection(timeout: 20))
        let splicedBefore = SplicedRead.readsSpliced
        let receivedBefore = SplicedReceive.receivesSpliced
        try pair.alpha.promote(force: true)
        var writesDuringSync = 0
        for _ in 0..<600 {
            let blocks = Int.random(in: 1...256, using: &generator)
            let offset = Int64.random(in: 0..<((pair.alpha.size - Int64(blocks * 512)) / 512), using: &generator) * 512
            try pair.alpha.write(Self.randomBytes(blocks * 512, &generator), at: offset)
            if pair.alpha.state.connection == .syncSource { writesDuringSync += 1 }
            usleep(2_000)
        }
        #expect(writesDuringSync > 100, "the writes did not overlap the sync")
        #expect(pair.alpha.waitForSync(timeout: 60), "\(pair.alpha.state)")
        #expect(pair.beta.waitForSync(timeout: 10), "\(pair.beta.state)")
        #expect(SplicedRead.readsSpliced > splicedBefore, "no resync block was spliced")
        #expect(SplicedReceive.receivesSpliced > receivedBefore, "no resync block was received by splice")
        pair.alpha.down()
        pair.beta.down()
        let size = pair.alpha.size
        #expect(try dataArea(pair.directory + "/alpha.img", size) == dataArea(pair.directory + "/beta.img", size))
    }

    @Test("holes are reported from an UpToDate disk only: an Inconsistent one, whose reads may come from the peer, reports all data")
    func allocationComesFromAnUpToDateDiskOnly() throws {
        let pair = try makePair(protocolName: "C", port: 17880)
        defer { pair.close() }
        try FileBlockTarget(path: pair.directory + "/alpha.img").write([UInt8](repeating: 0x77, count: 1 << 20), at: 8 << 20)
        try pair.alpha.up()
        try pair.beta.up()
        #expect(pair.alpha.waitForConnection(timeout: 20))
        let size = pair.alpha.size
        #expect(try pair.alpha.allocation(at: 0, length: size) == [AllocationExtent(length: size, isHole: false)], "Inconsistent: all data")
        try pair.alpha.promote(force: true)
        #expect(pair.alpha.waitForSync(timeout: 60), "\(pair.alpha.state)")
        #expect(try pair.alpha.allocation(at: 0, length: size) == [
            AllocationExtent(length: 8 << 20, isHole: true), AllocationExtent(length: 1 << 20, isHole: false),
            AllocationExtent(length: size - (9 << 20), isHole: true),
        ], "UpToDate: the holes of alpha's file")
        #expect(throws: BlockIOError.self) { try pair.alpha.allocation(at: size - 4096, length: 8192) }
    }
}
