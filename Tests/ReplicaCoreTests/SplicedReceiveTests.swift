import Foundation
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// Frame data received from a socket into pipes (`splice`) and written to the disk from there.
@Suite("Spliced receives from the peer")
struct SplicedReceiveTests {
    /// A connected TCP pair on 127.0.0.1 (sender, receiver), both blocking.
    func loopbackPair() throws -> (Int32, Int32) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let sender = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sender, $0, length) == 0 }
        }
        try #require(connected)
        let receiver = accept(listener, nil, nil)
        try #require(receiver >= 0)
        return (sender, receiver)
    }

    /// Sends `bytes` from another thread; returns when the thread is started.
    func send(_ bytes: [UInt8], on socket: Int32, closeAfter: Bool = false) -> Thread {
        let thread = Thread {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { Foundation.send(socket, $0.baseAddress! + done, min(bytes.count - done, 8192), Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { break }
                done += n
            }
            if closeAfter { shutdown(socket, Int32(SHUT_WR)) }
        }
        thread.start()
        return thread
    }

    /// `recv` until `buffer` is full.
    static func receiveExactly(_ socket: Int32) -> (UnsafeMutableRawBufferPointer) throws(TransportError) -> Void {
        { buffer throws(TransportError) in
            var done = 0
            while done < buffer.count {
                let n = recv(socket, buffer.baseAddress! + done, buffer.count - done, 0)
                guard n > 0 else { throw TransportError(n == 0 ? TransportError.closedByPeer : "recv failed") }
                done += n
            }
        }
    }

    static func pattern(_ count: Int, _ seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ ($0 >> 12) &+ seed) }
    }

    /// A file of `size` zero bytes in the test's temporary folder.
    func zeroFile(_ size: Int) throws -> (FileBlockTarget, String) {
        let path = NSTemporaryDirectory() + "replica-receive-\(UUID().uuidString.prefix(8)).img"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: size)))
        return (try FileBlockTarget(path: path), path)
    }

    @Test(arguments: [(0, 1 << 20, SplicedReceive.longestChain), (1000, 1 << 20, SplicedReceive.longestChain),
                      (65_496, 1 << 20, SplicedReceive.longestChain), (40, 1 << 20, 1), (0, 256 << 10, 1)])
    func receivedDataIsWrittenToTheDiskAsSent(prefixCount: Int, count: Int, chain: Int) throws {
        let (sender, receiver) = try loopbackPair()
        defer { close(sender); close(receiver) }
        let (disk, path) = try zeroFile(4 << 20)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let payload = Self.pattern(count, prefixCount)
        let thread = send(Array(payload[prefixCount...]), on: sender)
        let before = SplicedReceive.receivesSpliced
        let received = try #require(try SplicedReceive.receive(count, prefix: Array(payload[..<prefixCount]), from: receiver, longestChain: chain,
                                                             receiveRest: Self.receiveExactly(receiver)))
        #expect(SplicedReceive.receivesSpliced > before)
        #expect(received.count == count)
        let result = LocalIO.writeHeld(offset: 8192, data: HeldData(id: 1, count: received.count)).perform(on: disk, held: received)
        #expect(result == .success([]))
        let written = try disk.read(count: count, at: 8192)
        let equal = written == payload
        #expect(equal, "the disk holds other bytes than were sent")
        #expect(try disk.read(count: 8192, at: 0) == [UInt8](repeating: 0, count: 8192), "bytes before the range changed")
        _ = thread
    }

    @Test func whatTheChainOfPipesCannotHoldIsReceivedIntoMemory() throws {
        // Sent from a file's page cache at an offset that is not page-aligned, 1 MiB is 257
        // page fragments: one more than a 1 MiB pipe has slots.
        let (sender, receiver) = try loopbackPair()
        defer { close(sender); close(receiver) }
        let count = 1 << 20
        let source = NSTemporaryDirectory() + "replica-receive-source-\(UUID().uuidString.prefix(8)).img"
        let content = Self.pattern(count + 4096, 9)
        #expect(FileManager.default.createFile(atPath: source, contents: Data(content)))
        defer { try? FileManager.default.removeItem(atPath: source) }
        let file = open(source, O_RDONLY)
        defer { close(file) }
        let thread = Thread {
            var offset = off_t(2048)
            while offset < off_t(2048 + count) {
                guard sendfile(sender, file, &offset, 2048 + count - Int(offset)) > 0 else { break }
            }
        }
        thread.start()
        let (disk, path) = try zeroFile(2 << 20)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let received = try #require(try SplicedReceive.receive(count, prefix: [], from: receiver, longestChain: 1,
                                                             receiveRest: Self.receiveExactly(receiver)))
        #expect(received.bytesInMemory > 0, "everything fit one pipe")
        #expect(LocalIO.writeHeld(offset: 0, data: HeldData(id: 1, count: received.count)).perform(on: disk, held: received) == .success([]))
        let equal = try disk.read(count: count, at: 0) == Array(content[2048..<(2048 + count)])
        #expect(equal, "the disk holds other bytes than were sent")
    }

    @Test func heldBytesAreTakenOnce() throws {
        let (sender, receiver) = try loopbackPair()
        defer { close(sender); close(receiver) }
        let payload = Self.pattern(512 << 10, 3)
        _ = send(Array(payload[100...]), on: sender)
        let received = try #require(try SplicedReceive.receive(payload.count, prefix: Array(payload[..<100]), from: receiver,
                                                             receiveRest: Self.receiveExactly(receiver)))
        let taken = try received.takeBytes()
        let equal = taken == payload
        #expect(equal)
        #expect(throws: BlockIOError.self) { try received.takeBytes() }
    }

    @Test func aDiskWithoutPageCacheGetsTheBytesThroughItsWrite() throws {
        let (sender, receiver) = try loopbackPair()
        defer { close(sender); close(receiver) }
        let payload = Self.pattern(256 << 10, 5)
        _ = send(payload, on: sender)
        let received = try #require(try SplicedReceive.receive(payload.count, prefix: [], from: receiver, receiveRest: Self.receiveExactly(receiver)))
        let memory = MemoryBlockTarget(size: 1 << 20)
        #expect(LocalIO.writeHeld(offset: 4096, data: HeldData(id: 1, count: received.count)).perform(on: memory, held: received) == .success([]))
        let equal = try memory.read(count: payload.count, at: 4096) == payload
        #expect(equal)
    }

    @Test func aPeerThatEndsMidPayloadFailsTheReceiveAndLeavesNoPipe() throws {
        let (sender, receiver) = try loopbackPair()
        defer { close(sender); close(receiver) }
        let alive = ReceivePipes.alive
        let thread = send(Self.pattern(300 << 10, 7), on: sender, closeAfter: true)
        #expect(throws: TransportError(TransportError.closedByPeer)) {
            _ = try SplicedReceive.receive(1 << 20, prefix: [], from: receiver, receiveRest: Self.receiveExactly(receiver))
        }
        _ = thread
        // Failed receives close their pipes; idle ones may stay for reuse.
        #expect(ReceivePipes.alive <= max(alive, ReceivePipes.idleLimit))
    }
}
