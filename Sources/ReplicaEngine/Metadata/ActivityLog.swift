/// The in-memory activity log: an LRU set of `al-extents` hot 4 MiB extents, and the
/// transactions that record its changes on disk before a write may touch a cold extent.
///
/// Pure state: the engine asks ``activate(_:)`` before a write, writes the transaction
/// returned by ``makeTransaction()`` (after the bitmap pages of evicted extents), and calls
/// ``release(_:)`` when the write completed.
public struct ActivityLog: Sendable {
    /// Bytes per extent (AL_EXTENT_SHIFT 22).
    public static let extentSize: Int64 = 4 << 20

    /// What a write must wait for before it may start.
    public enum Activation: Sendable, Equatable {
        /// Every extent is hot: write now.
        case hot
        /// A transaction must be written first. Extents in `evicted` left the log: their
        /// bitmap pages must be on disk before the transaction.
        case needsTransaction(evicted: [UInt32])
        /// Every slot holds an extent with writes in flight: retry after a release.
        case busy
    }

    /// Number of slots (`al-extents`).
    public let slotCount: Int
    private var slots: [UInt32]
    private var slotOfExtent: [UInt32: Int] = [:]
    private var lastUse: [UInt64]
    private var inFlight: [UInt32: Int] = [:]
    private var clock: UInt64 = 0
    private var pendingUpdates: [(slot: UInt16, extent: UInt32)] = []
    private var contextCursor = 0
    /// The number the next transaction gets.
    public private(set) var nextTransactionNumber: UInt32

    /// An empty log of `slotCount` slots whose next transaction is `nextTransactionNumber`.
    public init(slotCount: Int, nextTransactionNumber: UInt32 = 1) {
        precondition(slotCount >= 1 && slotCount <= 65534, "al-extents out of range")
        self.slotCount = slotCount
        slots = [UInt32](repeating: ActivityLogTransaction.freeExtent, count: slotCount)
        lastUse = [UInt64](repeating: 0, count: slotCount)
        self.nextTransactionNumber = nextTransactionNumber
    }

    /// A log holding `extents` (from a replay), as after attach.
    public init(slotCount: Int, restoring extents: [UInt32], nextTransactionNumber: UInt32) {
        self.init(slotCount: slotCount, nextTransactionNumber: nextTransactionNumber)
        for extent in extents.prefix(slotCount) {
            let slot = slotOfExtent.count
            slots[slot] = extent
            slotOfExtent[extent] = slot
        }
    }

    /// The extents a byte range of data touches.
    public static func extents(offset: Int64, length: Int64) -> ClosedRange<UInt32> {
        let first = UInt32(offset / extentSize)
        let last = UInt32((offset + max(length, 1) - 1) / extentSize)
        return first...last
    }

    /// The extents currently hot.
    public var activeExtents: [UInt32] { slotOfExtent.keys.sorted() }

    /// Makes `extents` hot for a write and counts the write as in flight in them.
    public mutating func activate(_ extents: ClosedRange<UInt32>) -> Activation {
        let cold = extents.filter { slotOfExtent[$0] == nil }
        clock += 1
        guard !cold.isEmpty else {
            // The common case on every write: nothing to scan, no transaction.
            for extent in extents {
                inFlight[extent, default: 0] += 1
                lastUse[slotOfExtent[extent]!] = clock
            }
            return .hot
        }
        let freeSlots = slots.indices.filter { slots[$0] == ActivityLogTransaction.freeExtent }
        let evictable = slots.indices.filter { slots[$0] != ActivityLogTransaction.freeExtent && inFlight[slots[$0], default: 0] == 0 && !extents.contains(slots[$0]) }
        guard cold.count <= freeSlots.count + evictable.count, cold.count <= ActivityLogTransaction.updatesPerTransaction - pendingUpdates.count else {
            return .busy
        }
        var evicted: [UInt32] = []
        var free = freeSlots[...]
        var victims = evictable.sorted { lastUse[$0] < lastUse[$1] }[...]
        for extent in cold {
            let slot: Int
            if let next = free.popFirst() {
                slot = next
            } else {
                slot = victims.popFirst()!
                let old = slots[slot]
                slotOfExtent[old] = nil
                evicted.append(old)
            }
            slots[slot] = extent
            slotOfExtent[extent] = slot
            pendingUpdates.append((UInt16(slot), extent))
        }
        for extent in extents {
            inFlight[extent, default: 0] += 1
            lastUse[slotOfExtent[extent]!] = clock
        }
        return .needsTransaction(evicted: evicted)
    }

    /// Ends one in-flight write in `extents`.
    public mutating func release(_ extents: ClosedRange<UInt32>) {
        for extent in extents {
            guard let count = inFlight[extent] else { preconditionFailure("release of extent \(extent) without activate") }
            inFlight[extent] = count == 1 ? nil : count - 1
        }
    }

    /// The transaction recording the pending slot changes plus the next window of 919
    /// context slots. Call after ``activate(_:)`` returned `needsTransaction`.
    public mutating func makeTransaction() -> ActivityLogTransaction {
        let start = contextCursor
        let end = min(start + ActivityLogTransaction.contextPerTransaction, slotCount)
        let transaction = ActivityLogTransaction(
            number: nextTransactionNumber, contextSize: UInt16(slotCount), contextStartSlot: UInt16(start),
            updates: pendingUpdates, context: Array(slots[start..<end]))
        pendingUpdates.removeAll()
        contextCursor = end >= slotCount ? 0 : end
        nextTransactionNumber &+= 1
        return transaction
    }

    /// Checks that slots, the extent index and the in-flight counts agree.
    public func checkInvariants() -> Bool {
        for (extent, slot) in slotOfExtent where slots[slot] != extent { return false }
        let used = slots.filter { $0 != ActivityLogTransaction.freeExtent }
        return used.count == slotOfExtent.count && Set(used).count == used.count
            && inFlight.keys.allSatisfy { slotOfExtent[$0] != nil } && inFlight.values.allSatisfy { $0 > 0 }
    }
}
