/// The out-of-sync bitmap: one bit per 4 KiB block of data, set = out of sync with the peer.
///
/// Stored on disk as DRBD stores it (reference 4.6): 64-bit little-endian words, bit `n` in
/// byte `n / 8` at position `n % 8`. Bits past the end of the device are always 0.
///
/// The bitmap remembers which 4 KiB pages of that on-disk form changed since it was last
/// saved (``unsavedPages``), so that persisting it writes those pages only, as DRBD writes
/// bitmap pages, not the whole bitmap (32 MiB for 1 TiB of data). Equality compares the bits
/// only.
public struct Bitmap: Sendable, Equatable {
    /// Bytes of data covered by one bit.
    public static let bytesPerBit: Int64 = 4096

    /// Number of meaningful bits (blocks of the device).
    public let bitCount: Int64
    /// The words; bit `n` is bit `n % 64` of word `n / 64`.
    public private(set) var words: [UInt64]
    /// Number of set bits, kept up to date by every mutation.
    public private(set) var setCount: Int64 = 0
    /// One bit per on-disk page (``wordsPerPage`` words): set when the page changed since
    /// ``markPagesSaved()``.
    var unsavedPageBits: [UInt64]

    /// An all-clear bitmap for `bitCount` bits. None of it is on disk yet: every page counts
    /// as unsaved.
    public init(bitCount: Int64) {
        precondition(bitCount >= 0, "negative bit count")
        self.bitCount = bitCount
        words = [UInt64](repeating: 0, count: Int((bitCount + 63) / 64))
        let pages = (words.count + Self.wordsPerPage - 1) / Self.wordsPerPage
        unsavedPageBits = [UInt64](repeating: 0, count: (pages + 63) / 64)
        markAllPagesUnsaved()
    }

    /// Equal when the bits are: which pages are saved does not count.
    public static func == (lhs: Bitmap, rhs: Bitmap) -> Bool {
        lhs.bitCount == rhs.bitCount && lhs.words == rhs.words
    }

    /// An all-clear bitmap covering `bytes` bytes of data.
    public init(coveringBytes bytes: Int64) {
        self.init(bitCount: (bytes + Self.bytesPerBit - 1) / Self.bytesPerBit)
    }

    /// Decodes the on-disk form (little-endian 64-bit words); bits past `bitCount` are ignored
    /// (and reported by ``trailingBitsSet(in:bitCount:)``).
    public init(onDisk bytes: [UInt8], bitCount: Int64) {
        self.init(bitCount: bitCount)
        for position in 0..<min(words.count * 8, bytes.count) where bytes[position] != 0 {
            words[position / 8] |= UInt64(bytes[position]) << (8 * (position % 8))
        }
        clearTail()
        setCount = words.reduce(0) { $0 + Int64($1.nonzeroBitCount) }
        markPagesSaved()
    }

    private mutating func clearTail() {
        let extra = Int(bitCount % 64)
        if extra != 0, !words.isEmpty { words[words.count - 1] &= (1 << UInt64(extra)) - 1 }
    }

    /// The on-disk bytes, padded with zeroes to `byteCount` (at least the words' size).
    public func encoded(byteCount: Int? = nil) -> [UInt8] {
        var bytes = encodedPages(0..<pageCount)
        let count = max(byteCount ?? 0, words.count * 8)
        if bytes.count > count { bytes.removeLast(bytes.count - count) }
        if bytes.count < count { bytes.append(contentsOf: repeatElement(0, count: count - bytes.count)) }
        return bytes
    }

    /// True when bit `bit` is set.
    public func isSet(_ bit: Int64) -> Bool {
        precondition(bit >= 0 && bit < bitCount, "bit \(bit) outside bitmap of \(bitCount) bits")
        return words[Int(bit / 64)] & (1 << UInt64(bit % 64)) != 0
    }

    /// Sets every bit in `range`; returns how many were newly set.
    @discardableResult
    public mutating func set(_ range: Range<Int64>) -> Int64 { change(range, set: true) }

    /// Clears every bit in `range`; returns how many were set before.
    @discardableResult
    public mutating func clear(_ range: Range<Int64>) -> Int64 { change(range, set: false) }

    /// Sets all bits.
    public mutating func setAll() { set(0..<bitCount) }

    /// Clears all bits.
    public mutating func clearAll() {
        for index in words.indices where words[index] != 0 {
            words[index] = 0
            noteChange(ofWord: index)
        }
        setCount = 0
    }

    private mutating func change(_ range: Range<Int64>, set: Bool) -> Int64 {
        let lower = max(range.lowerBound, 0), upper = min(range.upperBound, bitCount)
        guard lower < upper else { return 0 }
        var changed: Int64 = 0
        var bit = lower
        while bit < upper {
            let index = Int(bit / 64)
            let start = bit % 64
            let end = min(64, start + (upper - bit))
            let mask: UInt64 = end - start == 64 ? ~0 : ((1 << UInt64(end - start)) - 1) << UInt64(start)
            let before = words[index]
            let after = set ? before | mask : before & ~mask
            if before != after {
                changed += Int64((before ^ after).nonzeroBitCount)
                words[index] = after
                noteChange(ofWord: index)
            }
            bit += end - start
        }
        setCount += set ? changed : -changed
        return changed
    }

    /// The bits covering bytes `offset..<offset+length` of data.
    public static func bits(forBytes offset: Int64, length: Int64) -> Range<Int64> {
        guard length > 0 else { return offset / bytesPerBit..<offset / bytesPerBit }
        return (offset / bytesPerBit)..<((offset + length + bytesPerBit - 1) / bytesPerBit)
    }

    /// Sets the bits covering a byte range of data (a write the peer has not confirmed).
    @discardableResult
    public mutating func markOutOfSync(offset: Int64, length: Int64) -> Int64 {
        set(Self.bits(forBytes: offset, length: length))
    }

    /// The first set bit at or after `start`, or nil.
    public func nextSetBit(from start: Int64) -> Int64? {
        guard start < bitCount else { return nil }
        var index = Int(max(start, 0) / 64)
        var word = words[index] & (~0 << UInt64(max(start, 0) % 64))
        while true {
            if word != 0 {
                let bit = Int64(index) * 64 + Int64(word.trailingZeroBitCount)
                return bit < bitCount ? bit : nil
            }
            index += 1
            guard index < words.count else { return nil }
            word = words[index]
        }
    }

    /// The first clear bit at or after `start` and before `limit` (`bitCount` unless given),
    /// or `limit` when every bit in between is set. The scan stops at `limit`: a resync that
    /// asks for runs of at most 256 bits looks at 4 words, not at the rest of a full bitmap.
    public func nextClearBit(from start: Int64, before limit: Int64? = nil) -> Int64 {
        let limit = min(limit ?? bitCount, bitCount)
        guard start < limit else { return limit }
        var index = Int(max(start, 0) / 64)
        let lastIndex = Int((limit - 1) / 64)
        var word = ~words[index] & (~0 << UInt64(max(start, 0) % 64))
        while true {
            if word != 0 { return min(Int64(index) * 64 + Int64(word.trailingZeroBitCount), limit) }
            index += 1
            guard index <= lastIndex else { return limit }
            word = ~words[index]
        }
    }

    /// Runs of set bits from `start`, each at most `maxBits` long: what a SyncTarget
    /// requests (DRBD asks for up to 1 MiB = 256 bits at a time).
    public func runs(from start: Int64 = 0, maxBits: Int64 = .max) -> [Range<Int64>] {
        var result: [Range<Int64>] = []
        var position = start
        while let first = nextSetBit(from: position) {
            let end = nextClearBit(from: first, before: maxBits >= bitCount - first ? bitCount : first + maxBits)
            result.append(first..<end)
            position = end
        }
        return result
    }

    /// Merges another bitmap of the same size into this one (bitwise OR), as the bitmap
    /// exchange at connect does.
    public mutating func formUnion(_ other: Bitmap) {
        precondition(other.bitCount == bitCount, "bitmaps of different sizes")
        var count: Int64 = 0
        for index in words.indices {
            if words[index] | other.words[index] != words[index] {
                words[index] |= other.words[index]
                noteChange(ofWord: index)
            }
            count += Int64(words[index].nonzeroBitCount)
        }
        setCount = count
    }

    /// ORs on-disk-order words into the bitmap from word `first` on (a chunk of the peer's
    /// bitmap); words past the end are ignored.
    public mutating func formUnion(words chunk: some Collection<UInt64>, startingAtWord first: Int) {
        for (index, word) in zip(first..., chunk) where index < words.count && word != 0 {
            let before = words[index]
            words[index] |= word
            if index == words.count - 1 { clearTail() }
            if words[index] != before { noteChange(ofWord: index) }
            setCount += Int64(words[index].nonzeroBitCount - before.nonzeroBitCount)
        }
    }

    /// Verifies the internal invariants (set count, clear tail). Used by tests and debug builds.
    public func checkInvariants() -> Bool {
        let counted = words.reduce(Int64(0)) { $0 + Int64($1.nonzeroBitCount) }
        let extra = Int(bitCount % 64)
        let tailClear = extra == 0 || words.isEmpty || words[words.count - 1] >> UInt64(extra) == 0
        return counted == setCount && tailClear && words.count == Int((bitCount + 63) / 64)
    }

    /// True when the on-disk bytes have bits set past `bitCount` (damaged or foreign bitmap).
    public static func trailingBitsSet(in bytes: [UInt8], bitCount: Int64) -> Bool {
        let firstByte = Int(bitCount / 8)
        guard firstByte < bytes.count else { return false }
        let partial = Int(bitCount % 8)
        if partial != 0, bytes[firstByte] >> UInt8(partial) != 0 { return true }
        let rest = partial == 0 ? firstByte : firstByte + 1
        return bytes[min(rest, bytes.count)...].contains { $0 != 0 }
    }
}
