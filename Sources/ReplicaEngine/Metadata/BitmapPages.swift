/// The on-disk pages of the bitmap and which of them changed since they were last saved.
///
/// A page is 4 KiB of the on-disk form: 512 words, 32 768 bits, 128 MiB of data. Every
/// mutation of the bitmap notes the pages whose words it changed; persisting the bitmap
/// writes those pages and then marks them saved.
extension Bitmap {
    /// Bytes in one on-disk page of the bitmap.
    public static let pageBytes = 4096
    /// Words in one on-disk page.
    public static let wordsPerPage = pageBytes / 8

    /// Number of on-disk pages (the last one padded with zeroes).
    public var pageCount: Int { (words.count + Self.wordsPerPage - 1) / Self.wordsPerPage }

    /// The pages changed since ``markPagesSaved()``, ascending.
    public var unsavedPages: [Int] {
        var pages: [Int] = []
        for (index, var word) in unsavedPageBits.enumerated() {
            while word != 0 {
                pages.append(index * 64 + word.trailingZeroBitCount)
                word &= word - 1
            }
        }
        return pages
    }

    /// Records that everything up to now is on disk.
    public mutating func markPagesSaved() {
        for index in unsavedPageBits.indices where unsavedPageBits[index] != 0 { unsavedPageBits[index] = 0 }
    }

    /// Counts every page as unsaved (the next save writes the whole bitmap).
    public mutating func markAllPagesUnsaved() {
        let pages = pageCount
        for index in unsavedPageBits.indices {
            let bitsInWord = min(64, pages - index * 64)
            unsavedPageBits[index] = bitsInWord == 64 ? ~0 : (1 << UInt64(bitsInWord)) - 1
        }
    }

    /// Counts `pages` as unsaved again (their write failed: the next save writes them).
    public mutating func markPagesUnsaved(_ pages: Range<Int>) {
        for page in pages where page >= 0 && page < pageCount { unsavedPageBits[page / 64] |= 1 << UInt64(page % 64) }
    }

    /// Notes that word `index` changed.
    @inline(__always)
    mutating func noteChange(ofWord index: Int) {
        let page = index / Self.wordsPerPage
        unsavedPageBits[page / 64] |= 1 << UInt64(page % 64)
    }

    /// The on-disk bytes of pages `pages`: `pages.count` × 4 KiB, zero past the last word.
    public func encodedPages(_ pages: Range<Int>) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: pages.count * Self.pageBytes)
        let firstWord = pages.lowerBound * Self.wordsPerPage
        let endWord = min(pages.upperBound * Self.wordsPerPage, words.count)
        guard firstWord < endWord else { return bytes }
        for index in firstWord..<endWord where words[index] != 0 {
            let word = words[index]
            let base = (index - firstWord) * 8
            for byte in 0..<8 { bytes[base + byte] = UInt8(truncatingIfNeeded: word >> (8 * byte)) }
        }
        return bytes
    }

    /// The unsaved pages as encoded runs of consecutive pages: what saving the bitmap writes.
    /// The runs own their bytes, so the bitmap can change meanwhile without a copy of its words.
    public var unsavedPageImages: [BitmapPageRun] {
        unsavedPageRuns.map { BitmapPageRun(firstPage: $0.lowerBound, bytes: encodedPages($0)) }
    }

    /// The unsaved pages grouped into runs of consecutive pages, each written with one call.
    public var unsavedPageRuns: [Range<Int>] {
        var runs: [Range<Int>] = []
        for page in unsavedPages {
            if let last = runs.last, last.upperBound == page {
                runs[runs.count - 1] = last.lowerBound..<(page + 1)
            } else {
                runs.append(page..<(page + 1))
            }
        }
        return runs
    }
}

/// Consecutive pages of the bitmap's on-disk form, encoded: what one bitmap write puts on disk.
public struct BitmapPageRun: Sendable, Equatable {
    /// Index of the first page (page `n` starts `n` × 4 KiB into the bitmap area).
    public let firstPage: Int
    /// The pages' bytes, a multiple of 4 KiB.
    public let bytes: [UInt8]

    /// A run of pages from `firstPage`.
    public init(firstPage: Int, bytes: [UInt8]) {
        precondition(firstPage >= 0 && bytes.count % Bitmap.pageBytes == 0, "a bitmap page run is whole pages")
        self.firstPage = firstPage
        self.bytes = bytes
    }

    /// The page indices the run covers.
    public var pages: Range<Int> { firstPage..<(firstPage + bytes.count / Bitmap.pageBytes) }
}
