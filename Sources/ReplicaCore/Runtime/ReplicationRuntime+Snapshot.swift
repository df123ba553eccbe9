import Foundation

extension ReplicationRuntime {
    /// Waits until `predicate` holds for the state (checked every `pollMicroseconds`, 20 ms
    /// unless given), or `timeout` seconds pass.
    public func wait(timeout: Double, pollMicroseconds: UInt32 = 20_000, until predicate: (Snapshot) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(snapshot) { return true }
            usleep(pollMicroseconds)
        }
        return predicate(snapshot)
    }

    /// What status commands read without waiting for the engine.
    public struct Snapshot: Sendable {
        /// The state.
        public var state: ResourceState
        /// Counters.
        public var counters: EngineCounters
        /// Out-of-sync bits.
        public var outOfSyncBits: Int64
        /// Bits to sync when the current resync started.
        public var resyncTotalBits: Int64
        /// Generation UUIDs.
        public var uuids: GenerationUUIDs
        /// Exported size in bytes.
        public var size: Int64
        /// Why the connection was last closed, if it was.
        public var lastCloseReason: String?
        /// Requests waiting for completion.
        public var pendingRequests: Int
        /// `lo`, `pe`, `ua`, `ap`, `ep` of /proc/drbd.
        public var local = 0, peer = 0, unacknowledged = 0, application = 0, epochs = 1
        /// The replication protocol letter.
        public var wireProtocol = "C"
        /// What the resync-rate controller of a SyncTarget wants, KiB/s (`want:` in /proc/drbd).
        public var resyncWantKiB: Int64 = 0
    }
}
