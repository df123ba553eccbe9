import Foundation
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Block targets")
struct BlockTargetTests {
    func exercise(_ target: any BlockTarget) throws {
        let pattern = (0..<10000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try target.write(pattern, at: 4096 * 3 + 100)
        #expect(try target.read(count: pattern.count, at: 4096 * 3 + 100) == pattern)
        #expect(try target.read(count: 100, at: 4096 * 3) == [UInt8](repeating: 0, count: 100))
        try target.writeZeroes(at: 4096 * 4, length: 4096)
        let after = try target.read(count: pattern.count, at: 4096 * 3 + 100)
        #expect(after[..<3996] == pattern[..<3996])
        #expect(after[3996..<(3996 + 4096)].allSatisfy { $0 == 0 })
        #expect(after[(3996 + 4096)...] == pattern[(3996 + 4096)...])
        try target.discard(at: 0, length: 4096 * 16)
        #expect(try target.read(count: 4096, at: 4096 * 4).allSatisfy { $0 == 0 })
        try target.flush()
    }

    func expectRangeError(_ target: any BlockTarget) {
        do {
            try target.write([1, 2, 3], at: target.size - 1)
            Issue.record("write past the end accepted")
        } catch {
            #expect(error.operation == .write)
            #expect(error.offset == target.size - 1)
            #expect(error.errno == 22)
            #expect(error.description.contains("outside the device"))
        }
        #expect(throws: BlockIOError.self) { try target.read(count: 1, at: -1) }
    }

    @Test func memoryTarget() throws {
        let target = MemoryBlockTarget(size: 1 << 20)
        try exercise(target)
        expectRangeError(target)
    }

    @Test func memoryTargetInjectedFailureNamesTheOffset() throws {
        let target = MemoryBlockTarget(size: 1 << 20)
        target.injectFailure(in: 8192..<12288)
        try target.write([1], at: 0)
        do {
            try target.write([1, 2], at: 8192)
            Issue.record("injected failure not raised")
        } catch {
            #expect(error.errno == 5 && error.offset == 8192 && error.operation == .write)
        }
        target.clearFailures()
        try target.write([1, 2], at: 8192)
    }

    @Test(arguments: [false, true])
    func fileTarget(directIO: Bool) throws {
        let path = FileManagerShim.temporaryPath("file-target")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        defer { FileManagerShim.remove(path) }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 20)
        try handle.close()
        let opened = Result { () throws(BlockIOError) in try FileBlockTarget(path: path, directIO: directIO) }
        if directIO, case .failure(let error) = opened, error.errno == 22 {
            return  // the file system (e.g. tmpfs) has no O_DIRECT
        }
        let target = try opened.get()
        #expect(target.size == 1 << 20)
        #expect(!target.isBlockDevice)
        #expect(target.logicalBlockSize == 512)
        try exercise(target)
        expectRangeError(target)
    }

    @Test func openErrorsNameThePath() {
        do {
            _ = try FileBlockTarget(path: "/nonexistent/replica-disk")
            Issue.record("missing file opened")
        } catch {
            #expect(error.operation == .open && error.errno == 2)
            #expect(error.description.contains("/nonexistent/replica-disk"))
            #expect(error.description.contains("ENOENT"))
        }
        #expect(throws: BlockIOError.self) { try FileBlockTarget(path: "/tmp") }
    }
}
