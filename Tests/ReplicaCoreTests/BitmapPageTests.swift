import Synchronization
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// A block target that counts the bytes written to it (and forwards everything).
private final class CountingTarget: BlockTarget {
    let inner: MemoryBlockTarget
    let written = Atomic<Int>(0)
    init(_ inner: MemoryBlockTarget) { self.inner = inner }
    var size: Int64 { inner.size }
    var logicalBlockSize: Int { inner.logicalBlockSize }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) { try inner.read(into: buffer, at: offset) }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        written.add(buffer.count, ordering: .relaxed)
        try inner.write(buffer, at: offset)
    }
    func flush() throws(BlockIOError) { try inner.flush() }
    func discard(at offset: Int64, length: Int64) throws(BlockIOError) { try inner.discard(at: offset, length: length) }
    func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError) { try inner.writeZeroes(at: offset, length: length) }
}

@Suite("Bitmap pages saved as they change")
struct BitmapPageTests {
    static let bitsPerPage = Int64(Bitmap.pageBytes * 8)

    @Test func changedPagesAreTrackedUntilSaved() {
        var bitmap = Bitmap(bitCount: 3 * Self.bitsPerPage + 100)
        #expect(bitmap.pageCount == 4)
        #expect(bitmap.unsavedPages == [0, 1, 2, 3], "a new bitmap is not on disk")
        bitmap.markPagesSaved()
        #expect(bitmap.unsavedPages.isEmpty)

        bitmap.set(40_000..<40_001)
        #expect(bitmap.unsavedPages == [1])
        bitmap.markPagesSaved()
        bitmap.set(40_000..<40_001)
        bitmap.clear(0..<10)
        #expect(bitmap.unsavedPages.isEmpty, "setting a set bit or clearing a clear one changes no page")

        bitmap.set((Self.bitsPerPage - 1)..<(Self.bitsPerPage + 1))
        bitmap.set((3 * Self.bitsPerPage + 99)..<(3 * Self.bitsPerPage + 100))
        #expect(bitmap.unsavedPages == [0, 1, 3])
        #expect(bitmap.unsavedPageRuns == [0..<2, 3..<4])
        bitmap.markPagesSaved()

        bitmap.clearAll()
        #expect(bitmap.unsavedPages == [0, 1, 3], "clearing all touches the pages that had bits")
        bitmap.markPagesSaved()

        var other = Bitmap(bitCount: bitmap.bitCount)
        other.set((2 * Self.bitsPerPage)..<(2 * Self.bitsPerPage + 5))
        bitmap.formUnion(other)
        #expect(bitmap.unsavedPages == [2])
        bitmap.markPagesSaved()
        bitmap.formUnion(words: [1], startingAtWord: 3 * Bitmap.wordsPerPage)
        #expect(bitmap.unsavedPages == [3])
        bitmap.markAllPagesUnsaved()
        #expect(bitmap.unsavedPages == [0, 1, 2, 3])
    }

    @Test func aBitmapReadFromDiskHasNothingUnsavedAndEqualityIgnoresIt() {
        var bitmap = Bitmap(bitCount: 70_000)
        bitmap.set(5..<9)
        let decoded = Bitmap(onDisk: bitmap.encoded(), bitCount: 70_000)
        #expect(decoded.unsavedPages.isEmpty)
        #expect(decoded == bitmap)
    }

    @Test func encodedPagesMatchTheWholeEncoding() {
        var bitmap = Bitmap(bitCount: 2 * Self.bitsPerPage + 77)
        bitmap.set(3..<900)
        bitmap.set((Self.bitsPerPage + 11)..<(2 * Self.bitsPerPage + 70))
        let whole = bitmap.encoded(byteCount: bitmap.pageCount * Bitmap.pageBytes)
        for run in [0..<1, 1..<3, 2..<3, 0..<3] {
            let start = run.lowerBound * Bitmap.pageBytes, end = run.upperBound * Bitmap.pageBytes
            #expect(bitmap.encodedPages(run) == Array(whole[start..<end]))
        }
    }

    /// Random changes, each saved as the engine saves them: the disk always reads back as the
    /// bitmap in memory, and a change of a few bits writes a page, not the whole bitmap.
    @Test func savingChangedPagesKeepsTheDiskEqualToMemory() throws {
        let memory = MemoryBlockTarget(size: 20 << 30)
        let disk = CountingTarget(memory)
        let device = try MetadataDevice.internalMetadata(disk, name: "mem")
        try device.create(force: false)
        let superblock = try device.readCheckedSuperblock()
        var bitmap = try device.readBitmap(superblock, dataBytes: device.dataBytes(superblock))
        #expect(bitmap.pageCount > 100, "a bitmap of many pages (\(bitmap.pageCount))")
        var generator = SeededGenerator(seed: 7)
        for round in 0..<200 {
            let before = disk.written.load(ordering: .relaxed)
            let start = Int64.random(in: 0..<bitmap.bitCount, using: &generator)
            let length = Int64.random(in: 1...(round % 10 == 0 ? 100_000 : 300), using: &generator)
            if Bool.random(using: &generator) { bitmap.set(start..<(start + length)) } else { bitmap.clear(start..<(start + length)) }
            let pages = bitmap.unsavedPages.count
            try device.writeBitmapPages(bitmap.unsavedPageImages, superblock)
            bitmap.markPagesSaved()
            #expect(disk.written.load(ordering: .relaxed) - before == pages * Bitmap.pageBytes)
            if round % 20 == 0 {
                #expect(try device.readBitmap(superblock, dataBytes: device.dataBytes(superblock)) == bitmap)
            }
        }
        #expect(try device.readBitmap(superblock, dataBytes: device.dataBytes(superblock)) == bitmap)
    }

    /// A disconnected Primary writing over a 20 GiB disk evicts activity-log extents; each
    /// eviction saves the bitmap, and each save writes the one page the last write touched,
    /// not the 160 pages of the whole bitmap. The meta-data then holds every bit but that of
    /// the last write, whose extent the activity log still covers.
    @Test func evictionsWriteTheChangedPagesOnly() throws {
        var configuration = EngineConfiguration()
        configuration.activityLogExtents = 61
        var pair = try InMemoryCluster(diskSize: 20 << 30, configuration: configuration)
        try pair.connect()
        try pair.run()
        #expect(try pair.admin(0) { $0.newCurrentUUID(clearBitmap: true) } == nil)
        try pair.run()
        #expect(try pair.admin(0) { $0.promote(force: false) } == nil)
        try pair.run()
        try pair.disconnect()
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection < .connected)
        #expect(pair.nodes[0].engine.bitmap.pageCount == 160)
        let extentBytes: Int64 = 4 << 20
        let extents = (20 << 30) / extentBytes
        // Writes 148 MiB apart: each in a new extent and a new bitmap page.
        func write(_ index: Int64) throws {
            let offset = (index * 37 % extents) * extentBytes
            try pair.request(0, RequestID(1000 + index), .write(offset: offset, data: [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 4096)))
            try pair.run()
        }
        // Fill the 61 slots, and one more: the first eviction saves the 61 pages written so far.
        for index in 0..<Int64(62) { try write(index) }
        let writesBefore = pair.nodes[0].engine.counters.bitmapWrites
        let bytesBefore = pair.nodes[0].bitmapBytesWritten
        for index in Int64(62)..<300 { try write(index) }
        #expect(pair.nodes[0].completions.count == 300)
        #expect(pair.nodes[0].completions.allSatisfy { if case .success = $0.1 { true } else { false } })
        let saves = Int(pair.nodes[0].engine.counters.bitmapWrites - writesBefore)
        let bytes = pair.nodes[0].bitmapBytesWritten - bytesBefore
        #expect(saves == 238, "one save per eviction")
        #expect(bytes == saves * Bitmap.pageBytes, "\(bytes) bytes for \(saves) saves: one page each")

        let metadata = pair.nodes[0].metadata
        let superblock = try metadata.readSuperblock()
        let onDisk = try metadata.readBitmap(superblock, dataBytes: metadata.dataBytes(superblock))
        let inMemory = pair.nodes[0].engine.bitmap
        #expect(inMemory.setCount == 300 && onDisk.setCount == 299)
        let lastBit = (299 * 37 % extents) * extentBytes / Bitmap.bytesPerBit
        #expect(inMemory.isSet(lastBit) && !onDisk.isSet(lastBit))
        var withLast = onDisk
        withLast.set(lastBit..<(lastBit + 1))
        #expect(withLast == inMemory)
    }

    /// A save whose write fails leaves its pages unsaved (the engine marks them so when told of
    /// the failure); the next save writes them with its own, and the disk ends equal to the
    /// bitmap in memory.
    @Test func pagesOfAFailedSaveAreWrittenWithTheNext() throws {
        let disk = MemoryBlockTarget(size: 20 << 30)
        let device = try MetadataDevice.internalMetadata(disk, name: "mem")
        try device.create(force: false)
        let superblock = try device.readCheckedSuperblock()
        var bitmap = try device.readBitmap(superblock, dataBytes: device.dataBytes(superblock))
        let page = Self.bitsPerPage

        // Pages 3 and 4 change; their write fails.
        bitmap.set((3 * page + 1)..<(3 * page + 2))
        bitmap.set((4 * page + 7)..<(4 * page + 9))
        let failing = device.bitmapOffset(superblock) + Int64(3 * Bitmap.pageBytes)
        disk.injectFailure(in: failing..<(failing + Int64(2 * Bitmap.pageBytes)))
        var runs = bitmap.unsavedPageImages
        bitmap.markPagesSaved()
        #expect(throws: MetadataError.self) { try device.writeBitmapPages(runs, superblock) }
        for run in runs { bitmap.markPagesUnsaved(run.pages) }
        #expect(bitmap.unsavedPages == [3, 4])
        disk.clearFailures()

        // The next save changes page 4 again and page 9: page 3 goes with them.
        bitmap.clear((4 * page + 7)..<(4 * page + 8))
        bitmap.set((9 * page)..<(9 * page + 1))
        runs = bitmap.unsavedPageImages
        bitmap.markPagesSaved()
        #expect(runs.map(\.pages) == [3..<5, 9..<10])
        try device.writeBitmapPages(runs, superblock)
        #expect(bitmap.unsavedPages.isEmpty)
        #expect(try device.readBitmap(superblock, dataBytes: device.dataBytes(superblock)) == bitmap)
    }

    /// The Primary of a 20 GiB disk writes apart from its peer across 160 bitmap pages, its
    /// activity log evicting all the while, and crashes: restarted from its meta-data (the
    /// saved pages, the activity log replayed) and connected again, it resyncs every block it
    /// wrote, and the peer's disk holds each of them.
    @Test func aPrimaryCrashAfterWritesAcrossManyPagesLosesNoBlock() throws {
        var configuration = EngineConfiguration()
        configuration.activityLogExtents = 61
        var pair = try InMemoryCluster.primaryPair(diskSize: 20 << 30, configuration: configuration)
        try pair.disconnect()
        try pair.run()
        let extents: Int64 = (20 << 30) >> 22
        var written: [(offset: Int64, value: UInt8)] = []
        for index in Int64(0)..<400 {
            let offset = ((index * 37 + index / 128) % extents) << 22 + (index % 5) * 4096
            let value = UInt8(truncatingIfNeeded: index &* 7 &+ 1)
            try pair.request(0, RequestID(100 + index), .write(offset: offset, data: [UInt8](repeating: value, count: 4096)))
            try pair.run()
            written.append((offset, value))
        }
        #expect(pair.nodes[0].completions.allSatisfy { if case .success = $0.1 { true } else { false } })
        #expect(Set(written.map { $0.offset >> 22 }).count == 400, "every write in its own extent")
        #expect(pair.nodes[0].engine.counters.bitmapWrites > 300)

        try pair.reattach(0)
        try pair.run()
        let states = (pair.nodes[0].engine.state, pair.nodes[1].engine.state)
        #expect(states.0.connection == .connected && states.0.disk == .upToDate && states.0.peerDisk == .upToDate, "\(states.0) \(pair.nodes[0].log)")
        #expect(states.1.disk == .upToDate)
        #expect(pair.nodes[0].engine.bitmap.setCount == 0 && pair.nodes[1].engine.bitmap.setCount == 0)
        for (offset, value) in written {
            #expect(try pair.nodes[1].disk.read(count: 4096, at: offset) == [UInt8](repeating: value, count: 4096), "block at \(offset)")
        }
    }
}

