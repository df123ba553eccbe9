/// The compact form of bitmap chunks (frame type `compressedBitmap`): the bits as alternating
/// runs of equal values, the first run's value given, each run length a LEB128 varint. A bitmap
/// that is mostly clear (the normal case after a short outage) shrinks from 8 bytes per 64
/// bits to a few bytes per dirty region, as DRBD's P_COMPRESSED_BITMAP does.
public enum BitmapRunLength {
    /// The most words one compressed frame may stand for (8 MiB of bitmap, 256 GiB of disk),
    /// so that a hostile frame cannot make the receiver allocate without bound.
    public static let maximumWordsPerFrame = 1 << 20

    /// Encodes as many whole words from the start of `words` as fit in `maximumBytes` of runs
    /// (at least one word); returns the first value, the runs and how many words they cover.
    public static func encode(_ words: ArraySlice<UInt64>, maximumBytes: Int) -> (firstValue: Bool, runs: [UInt8], wordCount: Int) {
        guard let firstWord = words.first else { return (false, [], 0) }
        let firstValue = firstWord & 1 == 1
        var runs: [UInt8] = []
        var current = firstValue
        var length: UInt64 = 0
        var covered = 0
        for word in words.prefix(maximumWordsPerFrame) {
            let saved = (runs.count, current, length)
            if word == 0 || word == ~0 {
                let bit = word != 0
                if bit == current { length += 64 } else { appendVarint(length, to: &runs); current = bit; length = 64 }
            } else {
                for index in 0..<64 {
                    let bit = (word >> UInt64(index)) & 1 == 1
                    if bit == current { length += 1 } else { appendVarint(length, to: &runs); current = bit; length = 1 }
                }
            }
            if covered > 0, runs.count + varintSize(length) > maximumBytes {
                runs.removeLast(runs.count - saved.0)
                current = saved.1
                length = saved.2
                break
            }
            covered += 1
        }
        appendVarint(length, to: &runs)
        return (firstValue, runs, covered)
    }

    /// Decodes `runs` into `wordCount` words.
    /// - Throws: ``ProtocolError`` when a varint is malformed, a run is empty, or the runs do
    ///   not add up to exactly `wordCount` × 64 bits.
    public static func decode(firstValue: Bool, runs: [UInt8], wordCount: Int) throws(ProtocolError) -> [UInt64] {
        guard wordCount >= 0, wordCount <= maximumWordsPerFrame else {
            throw ProtocolError("compressed bitmap for \(wordCount) words (at most \(maximumWordsPerFrame))")
        }
        var words = [UInt64](repeating: 0, count: wordCount)
        let totalBits = UInt64(wordCount) * 64
        var position: UInt64 = 0
        var value = firstValue
        var index = 0
        while index < runs.count {
            var length: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard index < runs.count else { throw ProtocolError("compressed bitmap: run length cut off at byte \(index)") }
                guard shift < 64 else { throw ProtocolError("compressed bitmap: run length longer than 64 bits at byte \(index)") }
                let byte = runs[index]
                index += 1
                length |= UInt64(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 { break }
            }
            guard length > 0 else { throw ProtocolError("compressed bitmap: empty run at byte \(index - 1)") }
            guard length <= totalBits - position else {
                throw ProtocolError("compressed bitmap: runs cover more than the \(totalBits) bits announced")
            }
            if value { setBits(&words, position..<(position + length)) }
            position += length
            value.toggle()
        }
        guard position == totalBits else {
            throw ProtocolError("compressed bitmap: runs cover \(position) bits, \(totalBits) announced")
        }
        return words
    }

    private static func setBits(_ words: inout [UInt64], _ range: Range<UInt64>) {
        var bit = range.lowerBound
        while bit < range.upperBound {
            let word = Int(bit / 64), offset = bit % 64
            let count = min(64 - offset, range.upperBound - bit)
            let mask: UInt64 = count == 64 ? ~0 : ((1 << count) - 1) << offset
            words[word] |= mask
            bit += count
        }
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest > 0 { size += 1; rest >>= 7 }
        return size
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }
}
