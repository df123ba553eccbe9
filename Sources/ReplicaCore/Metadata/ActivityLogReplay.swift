/// Reads the activity-log ring and computes which extents were hot (`apply-al`, reference 4.5).
public struct ActivityLogReplay: Sendable, Equatable {
    /// Extent numbers (4 MiB each) that were active: their data may differ from the peer.
    public var activeExtents: [UInt32]
    /// Number of valid update transactions found.
    public var validTransactions: Int
    /// Blocks that are damaged (bad checksum or magic), with the reason, by block index.
    public var damagedBlocks: [(index: Int, reason: String)]
    /// The newest transaction number (the next one is this + 1), or nil when none.
    public var newestTransaction: UInt32?

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.activeExtents == rhs.activeExtents && lhs.validTransactions == rhs.validTransactions
            && lhs.damagedBlocks.map(\.index) == rhs.damagedBlocks.map(\.index) && lhs.newestTransaction == rhs.newestTransaction
    }

    /// Replays `blocks` (the ring, in on-disk order) for `slots` AL slots.
    public init(blocks: [[UInt8]], slots: Int) {
        var transactions: [ActivityLogTransaction] = []
        var damaged: [(Int, String)] = []
        for (index, block) in blocks.enumerated() {
            do {
                let transaction = try ActivityLogTransaction(bytes: block)
                if transaction.type == ActivityLogTransaction.typeInitialized { continue }
                transactions.append(transaction)
            } catch {
                if block.allSatisfy({ $0 == 0 }) { continue }
                damaged.append((index, error.description))
            }
        }
        damagedBlocks = damaged
        validTransactions = transactions.count
        guard let newest = transactions.max(by: { Int32(bitPattern: $1.number &- $0.number) > 0 }) else {
            activeExtents = []
            newestTransaction = nil
            return
        }
        newestTransaction = newest.number
        // Oldest first: order by distance behind the newest (wrap-aware).
        transactions.sort { newest.number &- $0.number > newest.number &- $1.number }
        var table = [UInt32](repeating: ActivityLogTransaction.freeExtent, count: slots)
        for transaction in transactions {
            for (offset, extent) in transaction.context.enumerated() {
                let slot = Int(transaction.contextStartSlot) + offset
                if slot < slots { table[slot] = extent }
            }
            for update in transaction.updates where Int(update.slot) < slots {
                table[Int(update.slot)] = update.extent
            }
        }
        activeExtents = Array(Set(table.filter { $0 != ActivityLogTransaction.freeExtent })).sorted()
    }
}
