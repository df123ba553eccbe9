/// The four generation UUIDs of an attached device (reference 3.1), with DRBD's helper
/// operations. Bit 0 of the current UUID marks a Primary; comparisons mask it off.
public struct GenerationUUIDs: Sendable, Equatable, Hashable {
    /// `UUID_JUST_CREATED`: what create-md writes as the current UUID.
    public static let justCreatedValue: UInt64 = 4
    /// `UUID_NEW_BM_OFFSET`: added to the bitmap UUID to derive a new sync UUID.
    public static let newBitmapOffset: UInt64 = 0x0001_0000_0000_0000

    /// UI_CURRENT.
    public var current: UInt64
    /// UI_BITMAP: the generation the bitmap is relative to (0 when none).
    public var bitmap: UInt64
    /// UI_HISTORY_START.
    public var historyStart: UInt64
    /// UI_HISTORY_END.
    public var historyEnd: UInt64

    /// Creates a UUID set.
    public init(current: UInt64, bitmap: UInt64 = 0, historyStart: UInt64 = 0, historyEnd: UInt64 = 0) {
        self.current = current
        self.bitmap = bitmap
        self.historyStart = historyStart
        self.historyEnd = historyEnd
    }

    /// Fresh meta-data: current 4, everything else 0.
    public static let justCreated = GenerationUUIDs(current: justCreatedValue)

    /// The two history UUIDs.
    public var history: [UInt64] { [historyStart, historyEnd] }

    /// `uuid_set(BITMAP, v)` semantics for the history: if the bitmap slot held a value,
    /// it moves into history start (which moves to history end).
    mutating func rotateIntoHistory(_ value: UInt64) {
        guard value != 0 else { return }
        historyEnd = historyStart
        historyStart = value
    }

    /// `uuid_new_current()`: the current UUID becomes the bitmap UUID, and `random`
    /// becomes the current one (bit 0 set when `primary`).
    public mutating func newCurrent(random: UInt64, primary: Bool) {
        bitmap = current
        current = primary ? random | 1 : random & ~1
    }

    /// `uuid_set_bm(0)`: the bitmap UUID moves into history.
    public mutating func clearBitmapUUID() {
        rotateIntoHistory(bitmap)
        bitmap = 0
    }

    /// Sets the role bit of the current UUID.
    public mutating func setRoleBit(primary: Bool) {
        current = primary ? current | 1 : current & ~1
    }
}

extension GenerationUUIDs {
    /// `CURRENT:BITMAP:H1:H2` in hexadecimal, as `drbdmeta get-gi` begins its line.
    public var text: String {
        [current, bitmap, historyStart, historyEnd].map(\.hex16).joined(separator: ":")
    }
}
