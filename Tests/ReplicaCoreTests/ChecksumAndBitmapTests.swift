import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("CRC32C")
struct CRC32CTests {
    @Test func standardCheckValue() {
        #expect(CRC32C.standard(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func initializedActivityLogBlockChecksumMatchesDrbdmeta() {
        // drbdmeta create-md writes 69cb65a2 00000000 709cc651 ffff0000 ... in every AL block.
        let block = ActivityLogTransaction.initialized.encoded()
        #expect(Array(block[0..<16]) == [0x69, 0xCB, 0x65, 0xA2, 0, 0, 0, 0, 0x70, 0x9C, 0xC6, 0x51, 0xFF, 0xFF, 0, 0])
    }

    @Test(arguments: [0, 1, 7, 8, 9, 63, 64, 4095, 4096, 65537])
    func hardwareAndSoftwareAgree(length: Int) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let seed = UInt32.random(in: 0...UInt32.max)
        let software = bytes.withUnsafeBytes { CRC32C.software(seed, $0) }
        let dispatched = bytes.withUnsafeBytes { CRC32C.update(seed, $0) }
        #expect(software == dispatched)
    }
}

@Suite("Bitmap")
struct BitmapTests {
    @Test func setClearCountAndInvariants() {
        var bitmap = Bitmap(bitCount: 1000)
        #expect(bitmap.set(10..<20) == 10)
        #expect(bitmap.set(15..<25) == 5)
        #expect(bitmap.setCount == 15)
        #expect(bitmap.clear(0..<12) == 2)
        #expect(bitmap.setCount == 13)
        #expect(bitmap.isSet(12) && !bitmap.isSet(11) && bitmap.isSet(24) && !bitmap.isSet(25))
        #expect(bitmap.set(990..<2000) == 10)
        #expect(bitmap.checkInvariants())
        bitmap.setAll()
        #expect(bitmap.setCount == 1000)
        #expect(bitmap.checkInvariants())
        bitmap.clearAll()
        #expect(bitmap.setCount == 0)
    }

    @Test func littleEndianWordOrderAsDrbdStoresIt() {
        // dump value 0x00000000000000FF is stored ff 00 00 ..; 0x8000000000000001 as 01 00 .. 80.
        var bitmap = Bitmap(bitCount: 128)
        bitmap.set(0..<8)
        bitmap.set(64..<65)
        bitmap.set(127..<128)
        let bytes = bitmap.encoded()
        #expect(Array(bytes[0..<8]) == [0xFF, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[8..<16]) == [0x01, 0, 0, 0, 0, 0, 0, 0x80])
        #expect(bitmap.words == [0xFF, 0x8000_0000_0000_0001])
        #expect(Bitmap(onDisk: bytes, bitCount: 128) == bitmap)
    }

    @Test func bitsPastTheEndAreIgnoredAndDetected() {
        let bytes: [UInt8] = [0xFF, 0xFF]
        let bitmap = Bitmap(onDisk: bytes, bitCount: 12)
        #expect(bitmap.setCount == 12)
        #expect(bitmap.checkInvariants())
        #expect(Bitmap.trailingBitsSet(in: bytes, bitCount: 12))
        #expect(!Bitmap.trailingBitsSet(in: [0xFF, 0x0F], bitCount: 12))
    }

    @Test func runsAreSplitAtTheRequestLimit() {
        var bitmap = Bitmap(bitCount: 4096)
        bitmap.set(3..<5)
        bitmap.set(100..<700)
        bitmap.set(4095..<4096)
        #expect(bitmap.runs(maxBits: 256) == [3..<5, 100..<356, 356..<612, 612..<700, 4095..<4096])
        #expect(bitmap.nextSetBit(from: 5) == 100)
        #expect(bitmap.nextClearBit(from: 100) == 700)
        #expect(bitmap.nextSetBit(from: 4096) == nil)
    }

    @Test func theClearBitScanStopsAtItsLimit() {
        var bitmap = Bitmap(bitCount: 1000)
        bitmap.set(100..<700)
        #expect(bitmap.nextClearBit(from: 100, before: 356) == 356)
        #expect(bitmap.nextClearBit(from: 100, before: 128) == 128)
        #expect(bitmap.nextClearBit(from: 100, before: 129) == 129)
        #expect(bitmap.nextClearBit(from: 100, before: 101) == 101)
        #expect(bitmap.nextClearBit(from: 100, before: 100) == 100)
        #expect(bitmap.nextClearBit(from: 600, before: 900) == 700)
        #expect(bitmap.nextClearBit(from: 699, before: 700) == 700)
        #expect(bitmap.nextClearBit(from: 50, before: 90) == 50)
        #expect(bitmap.nextClearBit(from: 600, before: 5000) == 700)
        bitmap.set(0..<1000)
        #expect(bitmap.nextClearBit(from: 10, before: 5000) == 1000)
        #expect(bitmap.nextClearBit(from: 10) == 1000)
        #expect(bitmap.runs(from: 990) == [990..<1000])
        #expect(bitmap.runs(maxBits: 256).map(\.count) == [256, 256, 256, 232])
    }

    @Test func byteRangesMapToFourKiBBits() {
        #expect(Bitmap.bits(forBytes: 0, length: 4096) == 0..<1)
        #expect(Bitmap.bits(forBytes: 4095, length: 2) == 0..<2)
        #expect(Bitmap.bits(forBytes: 8192, length: 512) == 2..<3)
        var bitmap = Bitmap(coveringBytes: 1 << 20)
        #expect(bitmap.bitCount == 256)
        #expect(bitmap.markOutOfSync(offset: 4000, length: 200) == 2)
    }

    @Test func unionMergesBothSides() {
        var a = Bitmap(bitCount: 200), b = Bitmap(bitCount: 200)
        a.set(0..<10)
        b.set(5..<50)
        a.formUnion(b)
        #expect(a.setCount == 50)
        #expect(a.checkInvariants())
    }

    @Test func unionWithAChunkOfWordsMasksTheTail() {
        var bitmap = Bitmap(bitCount: 100)
        bitmap.set(0..<4)
        bitmap.formUnion(words: [0xF0, ~0], startingAtWord: 0)
        #expect(bitmap.setCount == 8 + 36)
        #expect(bitmap.isSet(99) && bitmap.checkInvariants())
        bitmap.formUnion(words: [~0, ~0], startingAtWord: 1)  // past the end: ignored
        #expect(bitmap.setCount == 44 && bitmap.checkInvariants())
    }

    @Test func randomOperationsKeepInvariants() {
        var bitmap = Bitmap(bitCount: 3000)
        var model = [Bool](repeating: false, count: 3000)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let start = Int64.random(in: 0..<3000, using: &generator)
            let end = min(3000, start + Int64.random(in: 0..<300, using: &generator))
            let set = Bool.random(using: &generator)
            if set { bitmap.set(start..<end) } else { bitmap.clear(start..<end) }
            for i in start..<end { model[Int(i)] = set }
            #expect(bitmap.checkInvariants())
        }
        #expect(bitmap.setCount == Int64(model.filter { $0 }.count))
        for i in stride(from: 0, to: 3000, by: 7) { #expect(bitmap.isSet(Int64(i)) == model[i]) }
        for _ in 0..<500 {
            let start = Int64.random(in: 0..<3000, using: &generator)
            let limit = start + Int64.random(in: 0..<400, using: &generator)
            let expected = (start..<min(limit, 3000)).first { !model[Int($0)] } ?? min(limit, 3000)
            #expect(bitmap.nextClearBit(from: start, before: limit) == expected)
        }
    }
}
