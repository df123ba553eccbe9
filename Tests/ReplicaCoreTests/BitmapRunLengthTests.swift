import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Compact bitmap encoding")
struct BitmapRunLengthTests {
    func randomWords(_ count: Int, density: UInt64, seed: UInt64) -> [UInt64] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            switch generator.next() % 100 {
            case ..<density: generator.next()      // a word with scattered bits
            case ..<(density * 2): ~0               // a fully dirty word
            default: 0
            }
        }
    }

    @Test(arguments: [UInt64(0), 1, 10, 50])
    func roundTripsExactly(density: UInt64) throws {
        for seed: UInt64 in 1...20 {
            let words = randomWords(3000, density: density, seed: seed)
            var first = 0
            var decoded: [UInt64] = []
            while first < words.count {
                let (value, runs, count) = BitmapRunLength.encode(words[first...], maximumBytes: 4096)
                #expect(runs.count <= 4096)
                #expect(count >= 1)
                decoded += try BitmapRunLength.decode(firstValue: value, runs: runs, wordCount: count)
                first += count
            }
            #expect(decoded == words, "density \(density)% seed \(seed)")
        }
    }

    @Test func aMostlyClearBitmapShrinks() {
        // 1 TiB of disk = 32 Mi bits = 512 Ki words, three dirty regions.
        var words = [UInt64](repeating: 0, count: 512 * 1024)
        words[10] = 0xFF
        for index in 1000..<1100 { words[index] = ~0 }
        words[400_000] = 1 << 17
        let (_, runs, count) = BitmapRunLength.encode(words[...], maximumBytes: 4096)
        #expect(count == words.count, "one frame covers the whole bitmap")
        #expect(runs.count < 40, "\(runs.count) bytes for 4 MiB of plain bitmap")
    }

    @Test func malformedRunsAreRejected() {
        func error(_ runs: [UInt8], words: Int, first: Bool = false) -> String? {
            do {
                _ = try BitmapRunLength.decode(firstValue: first, runs: runs, wordCount: words)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(error([64], words: 1) == nil)
        #expect(error([63], words: 1)?.contains("cover 63 bits, 64 announced") == true)
        #expect(error([65], words: 1)?.contains("more than the 64 bits") == true)
        #expect(error([0, 64], words: 1)?.contains("empty run") == true)
        #expect(error([0x80], words: 1)?.contains("cut off") == true)
        #expect(error([UInt8](repeating: 0xFF, count: 11) + [1], words: 1)?.contains("longer than 64 bits") == true)
        #expect(error([64], words: BitmapRunLength.maximumWordsPerFrame + 1)?.contains("at most") == true)
    }

    @Test func hostileCompressedFramesAreRejected() {
        func error(_ payload: [UInt8]) -> String? {
            do {
                _ = try FrameCodec.decode(FrameHeader(type: .compressedBitmap, volume: 0, length: UInt32(payload.count)), payload: payload)
                return nil
            } catch {
                return error.description
            }
        }
        var good = FrameCodec.encode(.compressedBitmap(BitmapChunk(firstBit: 0, totalBits: 128, words: [3, 0]))).payload
        #expect(error(good) == nil)
        good[20] = 2
        #expect(error(good)?.contains("first value 2") == true)
        // More words than the announced bitmap holds.
        let tooMany = FrameCodec.encode(.compressedBitmap(BitmapChunk(firstBit: 0, totalBits: 64, words: [0, 0, 0]))).payload
        #expect(error(tooMany)?.contains("does not fit") == true)
    }
}
