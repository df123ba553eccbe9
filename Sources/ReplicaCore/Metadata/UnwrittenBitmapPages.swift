/// Bitmap pages whose write failed, kept so that the next save writes them again — unless that
/// save brings a newer image of the page. Without it a page that failed once would stay stale
/// on disk until a later change touched it again.
public struct UnwrittenBitmapPages: Sendable {
    /// Page index → the page's 4 KiB.
    private var pages: [Int: ArraySlice<UInt8>] = [:]

    /// Nothing kept.
    public init() {}

    /// True when no page waits for a write.
    public var isEmpty: Bool { pages.isEmpty }

    /// What a save of `save` writes: its runs, then each kept page it does not cover.
    public func runs(for save: [BitmapPageRun]) -> [BitmapPageRun] {
        guard !pages.isEmpty else { return save }
        let covered = Set(save.flatMap { Array($0.pages) })
        let older = pages.keys.sorted().filter { !covered.contains($0) }
        return save + older.map { BitmapPageRun(firstPage: $0, bytes: Array(pages[$0]!)) }
    }

    /// The write of `runs` failed: every page of them waits for the next save.
    public mutating func keep(_ runs: [BitmapPageRun]) {
        for run in runs {
            for (position, page) in run.pages.enumerated() {
                pages[page] = run.bytes[(position * Bitmap.pageBytes)..<((position + 1) * Bitmap.pageBytes)]
            }
        }
    }

    /// Everything kept was written.
    public mutating func clear() { pages.removeAll() }
}
