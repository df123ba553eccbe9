/// One 4096-byte activity-log transaction block (`struct al_transaction_on_disk`, reference 4.5).
public struct ActivityLogTransaction: Sendable, Equatable {
    /// AL block magic.
    public static let magic: UInt32 = 0x69CB_65A2
    /// `AL_TR_UPDATE`.
    public static let typeUpdate: UInt16 = 0
    /// `AL_TR_INITIALIZED`, written by create-md.
    public static let typeInitialized: UInt16 = 0xFFFF
    /// Slot changes per transaction.
    public static let updatesPerTransaction = 64
    /// Context slots per transaction.
    public static let contextPerTransaction = 919
    /// A free slot / unused extent.
    public static let freeExtent: UInt32 = 0xFFFF_FFFF
    /// An unused update slot number.
    public static let unusedSlot: UInt16 = 0xFFFF
    /// Block size.
    public static let size = 4096

    /// Monotonic transaction number.
    public var number: UInt32
    /// `typeUpdate` or `typeInitialized`.
    public var type: UInt16
    /// Number of AL slots (`al-extents`).
    public var contextSize: UInt16
    /// The first slot the context window describes.
    public var contextStartSlot: UInt16
    /// The slot changes: (slot, extent).
    public var updates: [(slot: UInt16, extent: UInt32)]
    /// Extent numbers of slots `contextStartSlot ..< contextStartSlot + 919`.
    public var context: [UInt32]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.number == rhs.number && lhs.type == rhs.type && lhs.contextSize == rhs.contextSize
            && lhs.contextStartSlot == rhs.contextStartSlot && lhs.context == rhs.context
            && lhs.updates.map(\.slot) == rhs.updates.map(\.slot) && lhs.updates.map(\.extent) == rhs.updates.map(\.extent)
    }

    /// Creates a transaction.
    public init(number: UInt32, type: UInt16 = typeUpdate, contextSize: UInt16, contextStartSlot: UInt16,
                updates: [(slot: UInt16, extent: UInt32)], context: [UInt32]) {
        precondition(updates.count <= Self.updatesPerTransaction, "too many updates in one AL transaction")
        precondition(context.count <= Self.contextPerTransaction, "context window too large")
        self.number = number
        self.type = type
        self.contextSize = contextSize
        self.contextStartSlot = contextStartSlot
        self.updates = updates
        self.context = context
    }

    /// The block create-md writes into every AL slot.
    public static let initialized = ActivityLogTransaction(
        number: 0, type: typeInitialized, contextSize: 0, contextStartSlot: 0, updates: [], context: [])

    /// The block index of transaction `number` in a ring of `stripes` × `stripeSize4k` blocks
    /// (`al_tr_number_to_on_disk_sector`).
    public static func blockIndex(of number: UInt32, stripes: Int, stripeSize4k: Int) -> Int {
        let ring = UInt32(stripes * stripeSize4k)
        let t = Int(number % ring)
        return (t % stripes) * stripeSize4k + t / stripes
    }
}
