import Foundation
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Meta-data layout and superblock")
struct MetadataLayoutTests {
    // Observed with drbdmeta --force 0 v08 DEV internal create-md (reference 4.1).
    @Test(arguments: [
        (Int64(64) << 20, Int64(80), Int64(67_104_768), Int64(67_072_000), Int64(67_067_904), Int64(130_992)),
        (Int64(100) << 20, 80, 104_853_504, 104_820_736, 104_816_640, 204_720),
        // drbdmeta clamps la-size-sect to 2097016 on 1 GiB (the reference table's 2096992 is a misprint).
        (Int64(1) << 30, 136, 1_073_737_728, 1_073_704_960, 1_073_672_192, 2_097_016),
        (Int64(3000) << 20, 264, 3_145_723_904, 3_145_691_136, 3_145_592_832, 6_143_736),
        (Int64(10) << 30, 712, 10_737_414_144, 10_737_381_376, 10_737_053_696, 20_970_808),
    ])
    func internalLayoutMatchesDrbdmeta(device: Int64, mdSize: Int64, mdOffset: Int64, alOffset: Int64, bmOffset: Int64, dataSectors: Int64) throws {
        let layout = try MetadataLayout.internalLayout(deviceBytes: device)
        #expect(layout.sizeSectors == mdSize)
        #expect(layout.superblockOffset == mdOffset)
        #expect(layout.activityLogOffset == alOffset)
        #expect(layout.bitmapOffset == bmOffset)
        #expect(layout.usableDataBytes / 512 == dataSectors)
    }

    @Test func stripedActivityLog() throws {
        let layout = try MetadataLayout.internalLayout(deviceBytes: 1 << 30, alStripes: 2, alStripeSize4k: 16)
        #expect(layout.sizeSectors == 328)
        #expect(layout.activityLogOffset == 1_073_606_656)
        #expect(layout.bitmapOffset == 1_073_573_888)
    }

    @Test func externalLayouts() throws {
        let flexible = try MetadataLayout.externalLayout(dataBytes: 1 << 30, metadataDeviceBytes: 8 << 20)
        #expect(flexible.superblockOffset == 0 && flexible.activityLogOffset == 4096 && flexible.bitmapOffset == 36864)
        #expect(flexible.sizeSectors == 16384)
        let indexed = try MetadataLayout.indexedLayout(dataBytes: 1 << 30, metadataDeviceBytes: 300 << 20, index: 1)
        #expect(indexed.superblockOffset == 134_217_728 && indexed.activityLogOffset == 134_221_824 && indexed.bitmapOffset == 134_254_592)
        #expect(indexed.sizeSectors == 262_144)
    }

    @Test func tooSmallDevicesAreRefusedWithSizes() {
        #expect(throws: MetadataLayout.LayoutError.self) { try MetadataLayout.internalLayout(deviceBytes: 40960) }
        do {
            _ = try MetadataLayout.internalLayout(deviceBytes: 40960)
        } catch {
            #expect(error.description.contains("40960 bytes"))
            #expect(error.description.contains("40960 bytes plus at least 4096 bytes of data"))
        }
        #expect(throws: MetadataLayout.LayoutError.self) { try MetadataLayout.externalLayout(dataBytes: 1 << 40, metadataDeviceBytes: 1 << 20) }
        #expect(throws: MetadataLayout.LayoutError.self) { try MetadataLayout.indexedLayout(dataBytes: 1 << 30, metadataDeviceBytes: 100 << 20, index: 1) }
    }

    @Test func freshSuperblockBytesMatchDrbdmeta() throws {
        let layout = try MetadataLayout.internalLayout(deviceBytes: 64 << 20)
        let bytes = Superblock(layout: layout).encoded()
        // 00000000: 0000 0000 0000 0000 0000 0000 0000 0004
        #expect(Array(bytes[0..<16]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4])
        // 00000030: 0000 0000 0000 0000 0000 0080 8374 026b
        #expect(Array(bytes[0x30..<0x40]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x83, 0x74, 0x02, 0x6B])
        // 00000040: 0000 0050 ffff ffc0 0000 0101 ffff ffb8
        #expect(Array(bytes[0x40..<0x50]) == [0, 0, 0, 0x50, 0xFF, 0xFF, 0xFF, 0xC0, 0, 0, 1, 1, 0xFF, 0xFF, 0xFF, 0xB8])
        // 00000050: 0000 1000 0000 0000 0000 0001 0000 0008
        #expect(Array(bytes[0x50..<0x60]) == [0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 8])
        #expect(bytes[0x60...].allSatisfy { $0 == 0 })
    }

    @Test func superblockRoundTripAndDamage() throws {
        var superblock = Superblock(layout: try MetadataLayout.internalLayout(deviceBytes: 64 << 20))
        superblock.uuids = GenerationUUIDs(current: 0xAAAA_AAAA_AAAA_AAAB, bitmap: 0xBBBB_BBBB_BBBB_BBBA, historyStart: 0xCCCC_CCCC_CCCC_CCCC, historyEnd: 0xDDDD_DDDD_DDDD_DDDD)
        superblock.deviceUUID = 0x1122_3344_5566_7788
        superblock.flags = MetadataFlags(rawValue: 0x91)
        superblock.lastAgreedSizeSectors = 130_992
        superblock.lastAgreedPeerMaxBioSize = 1 << 20
        let bytes = superblock.encoded()
        // The reference's hexdump after restore-md of these values.
        #expect(Array(bytes[0..<0x10]) == [0, 0, 0, 0, 0, 1, 0xFF, 0xB0, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAB])
        #expect(Array(bytes[0x50..<0x58]) == [0, 0, 0x10, 0, 0, 0x10, 0, 0])
        #expect(try Superblock(bytes: bytes) == superblock)

        var damaged = bytes
        damaged[0x3F] = 0x6D
        #expect(throws: Superblock.DecodeError.self) { try Superblock(bytes: damaged) }
        damaged = bytes
        damaged[0x3C..<0x40] = [0, 0, 0, 0]
        do {
            _ = try Superblock(bytes: damaged)
            Issue.record("zeroed magic accepted")
        } catch {
            #expect(error.description.contains("offset 0x3C"))
        }
        damaged = bytes
        damaged[0x53] = 0x01
        #expect(throws: Superblock.DecodeError.self) { try Superblock(bytes: damaged) }
    }

    @Test func flagsToDiskStates() {
        #expect(MetadataFlags([]).drbdmetaDiskState == .inconsistent)
        #expect(MetadataFlags([.consistent]).drbdmetaDiskState == .outdated)
        #expect(MetadataFlags([.consistent, .wasUpToDate]).drbdmetaDiskState == .consistent)
        #expect(MetadataFlags([.consistent, .wasUpToDate, .peerOutdated]).drbdmetaDiskState == .upToDate)
        #expect(MetadataFlags([.consistent, .wasUpToDate]).attachDiskState == .consistent)
        #expect(MetadataFlags([.consistent]).attachDiskState == .outdated)
    }
}

@Suite("Meta-data text")
struct MetadataTextTests {
    @Test func generationLine() throws {
        var superblock = Superblock(layout: try MetadataLayout.internalLayout(deviceBytes: 64 << 20))
        superblock.uuids = GenerationUUIDs(current: 0xAAAA_AAAA_AAAA_AAAB, bitmap: 0xBBBB_BBBB_BBBB_BBBA, historyStart: 0xCCCC_CCCC_CCCC_CCCC, historyEnd: 0xDDDD_DDDD_DDDD_DDDD)
        superblock.flags = [.consistent, .wasUpToDate, .activityLogClean]
        #expect(MetadataText.generationLine(superblock) == "AAAAAAAAAAAAAAAB:BBBBBBBBBBBBBBBA:CCCCCCCCCCCCCCCC:DDDDDDDDDDDDDDDD:1:1:0:0:0:0:0")
    }

    @Test func setGenerationIdentifiersAsDrbdmetaTakesThem() throws {
        let base = Superblock(layout: try MetadataLayout.internalLayout(deviceBytes: 64 << 20))
        let a = try MetadataText.applySetGenerationIdentifiers("A:B", to: base)
        #expect(MetadataText.generationLine(a) == "000000000000000A:000000000000000B:0000000000000000:0000000000000000:0:0:0:0:0:0:0")
        let b = try MetadataText.applySetGenerationIdentifiers("::C::1:1:::::1", to: a)
        #expect(MetadataText.generationLine(b) == "000000000000000A:000000000000000B:000000000000000C:0000000000000000:1:1:0:0:0:0:1")
        #expect(b.flags.contains(.activityLogClean))
        #expect(throws: MetadataText.SetGenerationError.self) { try MetadataText.applySetGenerationIdentifiers("zz", to: base) }
        do {
            _ = try MetadataText.applySetGenerationIdentifiers("1:2:3:4:2", to: base)
        } catch {
            #expect(error.description == "'2' is not 0 or 1.")
        }
    }

    @Test func humanSizes() {
        #expect(MetadataText.humanSize(kibibytes: 65496) == "64 MB")
        #expect(MetadataText.humanSize(kibibytes: 9999) == "9999 KB")
        #expect(MetadataText.humanSize(kibibytes: 10000) == "10 MB")
        #expect(MetadataText.humanSize(kibibytes: 1_048_496) == "1024 MB")
    }

    @Test func bitmapBodyCompressesAsDrbdmeta() {
        // From the reference dump: words 0..3 mixed, 8 × all-ones, 500 × zero.
        var words = [UInt64](repeating: 0, count: 512)
        words[0] = 0xFF
        words[1] = 0x8000_0000_0000_0001
        for i in 2..<12 { words[i] = ~0 }
        let body = MetadataText.bitmapBody(words)
        #expect(body == """
               # at 0kB
                0x00000000000000FF; 0x8000000000000001; 0xFFFFFFFFFFFFFFFF; 0xFFFFFFFFFFFFFFFF;
                8 times 0xFFFFFFFFFFFFFFFF;
                500 times 0x0000000000000000;

            """)
    }

    @Test func bitmapBodyKeepsShortRunsAndNonZeroRunsAsLines() {
        var words = [UInt64](repeating: 0xAB, count: 64)
        for i in 4..<11 { words[i] = 0 }  // seven zeroes: not compressed
        for i in 28..<36 { words[i] = ~0 }  // eight ones from a line start: compressed
        for i in 40..<64 { words[i] = 0 }
        let lines = MetadataText.bitmapBody(words).split(separator: "\n").map(String.init)
        #expect(lines[0] == "   # at 0kB")
        #expect(lines[2] == "    0x0000000000000000; 0x0000000000000000; 0x0000000000000000; 0x0000000000000000;")
        #expect(lines.contains("    8 times 0xFFFFFFFFFFFFFFFF;"))
        #expect(lines.last == "    24 times 0x0000000000000000;")
        #expect(!lines.contains { $0.contains("# at 8192kB") })
    }

    @Test func showGenerationIdentifiersFlagsLine() throws {
        var superblock = Superblock(layout: try MetadataLayout.internalLayout(deviceBytes: 64 << 20))
        superblock.flags = [.primaryIndicator, .crashedPrimary, .fullSync, .peerOutdated]
        let text = MetadataText.showGenerationIdentifiers(superblock)
        #expect(text.contains("flags: crashed Primary, StandAlone, Inconsistent, need full sync, peer Outdated\n"))
        #expect(text.contains("meta-data: need apply-al\n"))
        #expect(text.contains("zero size device -- never seen peer yet?\n"))
    }
}

@Suite("Meta-data device")
struct MetadataDeviceTests {
    @Test func anAbandonedAttachmentLeavesTheSuperblockAsItWasFound() throws {
        // A refused attach in place must not leave the meta-data claiming the disk was in use
        // (the next attach would replay the activity log for nothing).
        let disk = MemoryBlockTarget(size: 8 << 20)
        let metadata = try MetadataDevice.internalMetadata(disk, name: "abandoned")
        try metadata.create(force: true)
        let found = try metadata.readSuperblock()
        let attachment = try VolumeAttachment.attach(disk: disk, metadata: metadata, configuration: EngineConfiguration(),
                                                     metadataFlushes: true, entropySeed: 1)
        #expect(try metadata.readSuperblock().magic == Superblock.magicV08Unclean, "attached: marked in use")
        try attachment.abandon()
        #expect(try metadata.readSuperblock() == found)
    }

    @Test func createRefusesToOverwriteAndReadsBack() throws {
        let disk = MemoryBlockTarget(size: 64 << 20)
        let device = try MetadataDevice.internalMetadata(disk, name: "mem")
        try device.create(force: false)
        let superblock = try device.readCheckedSuperblock()
        #expect(superblock.uuids == .justCreated)
        #expect(superblock.flags == .activityLogClean)
        #expect(superblock.activityLogExtents == 257)
        #expect(throws: MetadataError.self) { try device.create(force: false) }
        try device.create(force: true)
        let blocks = try device.readActivityLogBlocks(superblock)
        #expect(blocks.count == 8)
        #expect(blocks.allSatisfy { $0 == ActivityLogTransaction.initialized.encoded() })
    }

    @Test func applyActivityLogMarksHotExtentsOutOfSync() throws {
        let disk = MemoryBlockTarget(size: 256 << 20)
        let device = try MetadataDevice.internalMetadata(disk, name: "mem")
        try device.create(force: false)
        var superblock = try device.readCheckedSuperblock()
        var log = ActivityLog(slotCount: Int(superblock.activityLogExtents))
        for extent: UInt32 in [2, 7, 30] {
            _ = log.activate(extent...extent)
            try device.writeActivityLogTransaction(log.makeTransaction(), superblock)
        }
        superblock.magic = Superblock.magicV08Unclean
        superblock.flags.remove(.activityLogClean)
        try device.writeSuperblock(superblock)

        let result = try device.applyActivityLog()
        #expect(result.replay.activeExtents == [2, 7, 30])
        #expect(result.bitsSet == 3 * 1024)
        let after = try device.readCheckedSuperblock()
        #expect(after.isCleanMagic && after.flags.contains(.activityLogClean))
        let bitmap = try device.readBitmap(after, dataBytes: device.dataBytes(after))
        #expect(bitmap.setCount == 3 * 1024)
        #expect(bitmap.isSet(7 * 1024) && bitmap.isSet(8 * 1024 - 1) && !bitmap.isSet(8 * 1024))
        // Idempotent.
        #expect(try device.applyActivityLog().bitsSet == 0)
    }

    @Test func damagedMetadataIsReportedWithOffsetAndNothingWritten() throws {
        let disk = MemoryBlockTarget(size: 64 << 20)
        let device = try MetadataDevice.internalMetadata(disk, name: "mem")
        do {
            _ = try device.readSuperblock()
            Issue.record("blank device accepted")
        } catch {
            #expect(error.description.contains("byte offset 67104768"))
            #expect(error.description.contains("no meta-data"))
        }
        try device.create(force: false)
        let superblock = try device.readSuperblock()
        var ring = try device.readActivityLogBlocks(superblock)
        for index in 0..<2 {
            var block = ActivityLogTransaction(number: UInt32(index + 1), contextSize: 257, contextStartSlot: 0, updates: [(0, 1)], context: []).encoded()
            block[100] ^= 0xFF
            ring[index] = block
            try disk.write(block, at: device.activityLogOffset(superblock) + Int64(index) * 4096)
        }
        let before = try disk.read(count: 4096, at: device.layout.superblockOffset)
        #expect(throws: MetadataError.self) { try device.applyActivityLog() }
        #expect(try disk.read(count: 4096, at: device.layout.superblockOffset) == before)
    }

    @Test func sizeMismatchIsReported() throws {
        let disk = MemoryBlockTarget(size: 64 << 20)
        let device = try MetadataDevice.internalMetadata(disk, name: "mem")
        try device.create(force: false)
        var superblock = try device.readSuperblock()
        superblock.lastAgreedSizeSectors = 200_000
        try device.writeSuperblock(superblock)
        do {
            _ = try device.readCheckedSuperblock()
            Issue.record("oversized la-size accepted")
        } catch {
            #expect(error.description.contains("size mismatch"))
        }
    }
}
