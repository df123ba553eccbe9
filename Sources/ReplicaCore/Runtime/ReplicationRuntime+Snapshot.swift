import Foundation
import Logging
import Synchronization

/// What status commands read of one volume without waiting for the engine.
public struct VolumeSnapshot: Sendable {
    /// The volume number.
    public var number: UInt16
    /// The state.
    public var state: ResourceState
    /// Counters.
    public var counters: EngineCounters
    /// Out-of-sync bits.
    public var outOfSyncBits: Int64
    /// Bits to sync when the current resync started.
    public var resyncTotalBits: Int64 = 0
    /// Generation UUIDs.
    public var uuids: GenerationUUIDs
    /// Exported size in bytes.
    public var size: Int64
    /// Application requests in the engine.
    public var pendingRequests = 0
    /// `lo`, `pe`, `ua`, `ap`, `ep` of /proc/drbd.
    public var local = 0, peer = 0, unacknowledged = 0, application = 0, epochs = 1
    /// The replication protocol letter.
    public var wireProtocol = "C"
    /// What the resync-rate controller of a SyncTarget wants, KiB/s (`want:` in /proc/drbd).
    public var resyncWantKiB: Int64 = 0
    /// The last failure of the volume's disk or meta-data (nil when none).
    public var lastError: String?
    /// Why the resource's connection was last closed (copied from the resource).
    public var lastCloseReason: String?

    /// The snapshot of a volume just set up.
    init(number: UInt16, engine: VolumeEngine) {
        self.number = number
        state = engine.state
        counters = engine.counters
        outOfSyncBits = engine.bitmap.setCount
        uuids = engine.superblock.uuids
        size = engine.size
        wireProtocol = engine.configuration.wireProtocol
    }
}

/// What status commands read of a resource without waiting for the engine.
public struct ResourceSnapshot: Sendable {
    /// Every volume, by ascending number.
    public var volumes: [VolumeSnapshot]
    /// The transport (`tcp`, `memory`).
    public var transport: String
    /// True when the link is encrypted (`tls yes`).
    public var tls = false
    /// The link's endpoints, while one is up (or the last one).
    public var endpoints: String?
    /// Why the connection was last closed, if it was.
    public var lastCloseReason: String?
    /// Why the transport's last connection attempt failed, if it did.
    public var lastConnectFailure: String?
    /// Application requests held back by the bounds (``LinkLimits``): `congested` when not 0.
    public var heldRequests = 0
    /// Bytes queued on the link toward the peer.
    public var queuedBytes = 0
    /// Application requests in the engines.
    public var applicationInFlight = 0
    /// Changes of the connection state (of the first volume: the connection is the
    /// resource's) since the runtime started.
    public var connectionStateChanges = 0

    /// The link's queue bound (`max-buffers` × 4 KiB).
    public var queueLimitBytes = 0

    /// True while the link's queue is at its bound or requests wait for it or for
    /// `max-io-depth` (DRBD 9's `congested:yes`).
    public var congested: Bool { heldRequests > 0 || (queueLimitBytes > 0 && queuedBytes >= queueLimitBytes) }

    init(volumes: [VolumeSnapshot], transport: String) {
        self.volumes = volumes
        self.transport = transport
    }
}

extension ReplicationRuntime {
    /// The latest published status of the resource.
    public var resourceSnapshot: ResourceSnapshot { published.withLock { $0 } }

    /// The latest published status of the first volume (the only one of most resources).
    public var snapshot: VolumeSnapshot { published.withLock { $0.volumes[0] } }

    /// The latest published status of volume `number`.
    public func snapshot(volume number: UInt16) -> VolumeSnapshot? {
        published.withLock { $0.volumes.first { $0.number == number } }
    }

    /// Waits until `predicate` holds for the first volume's state, or `timeout` seconds pass;
    /// woken by every published change (no polling).
    public func wait(timeout: Double, until predicate: (VolumeSnapshot) -> Bool) -> Bool {
        waitForResource(timeout: timeout) { predicate($0.volumes[0]) }
    }

    /// Waits until `predicate` holds for the resource's status, or `timeout` seconds pass;
    /// woken by every published change (no polling).
    public func waitForResource(timeout: Double, until predicate: (ResourceSnapshot) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        return publishedChanged.withLock {
            // Counted before the first look, so that a step publishing after it wakes us
            // (``publish()`` broadcasts only while someone waits).
            publishWaiters.add(1, ordering: .sequentiallyConsistent)
            defer { publishWaiters.subtract(1, ordering: .sequentiallyConsistent) }
            while !predicate(resourceSnapshot) {
                if !publishedChanged.wait(until: deadline) { return predicate(resourceSnapshot) }
            }
            return true
        }
    }

    /// Publishes the engines' state for status readers (at the end of every step): each
    /// volume's snapshot is made outside the lock and stored in place under it (a copy of the
    /// published snapshot made its volume array copy on write: an allocation every step);
    /// waiters are woken only when there are any.
    func publish() {
        let queuedBytes = link?.queuedBytes ?? 0
        let lastConnectFailure = transport.lastFailure
        var stateChanged = false
        for (index, volume) in volumes.enumerated() {
            // Read in place: a copy of the engine here cost every step a retain and release of
            // each of its buffers.
            var volumeSnapshot = volume.driver.inspect { engine in
                var volumeSnapshot = VolumeSnapshot(number: volume.number, engine: engine)
                volumeSnapshot.resyncTotalBits = engine.resyncTotalBits
                volumeSnapshot.resyncWantKiB = engine.resyncWantKiBPerSecond
                let inFlight = engine.inFlight
                volumeSnapshot.local = inFlight.local
                volumeSnapshot.peer = inFlight.peer
                volumeSnapshot.unacknowledged = inFlight.unacknowledged
                volumeSnapshot.application = inFlight.application
                volumeSnapshot.epochs = inFlight.epochs
                return volumeSnapshot
            }
            volumeSnapshot.pendingRequests = volume.completions.count
            volumeSnapshot.lastError = volume.lastError
            let changed = published.withLock { snapshot -> Bool in
                volumeSnapshot.lastCloseReason = snapshot.lastCloseReason
                // Compared in place: a copy of the previous snapshot cost a retain and release
                // of each of its strings.
                let changed = snapshot.volumes[index].state != volumeSnapshot.state || snapshot.volumes[index].lastError != volumeSnapshot.lastError
                if index == 0, snapshot.volumes[0].state.connection != volumeSnapshot.state.connection { snapshot.connectionStateChanges += 1 }
                snapshot.volumes[index] = volumeSnapshot
                return changed
            }
            if changed { stateChanged = true }
        }
        let congestionChanged = published.withLock { snapshot -> Bool in
            let wasCongested = snapshot.congested
            snapshot.heldRequests = heldRequests.count
            snapshot.applicationInFlight = applicationInFlight
            snapshot.queuedBytes = queuedBytes
            snapshot.queueLimitBytes = limits.queueBytes
            snapshot.lastConnectFailure = lastConnectFailure
            return wasCongested != snapshot.congested
        }
        if publishWaiters.load(ordering: .sequentiallyConsistent) > 0 { publishedChanged.withLock { publishedChanged.broadcast() } }
        if stateChanged || congestionChanged { stateChanges.bump() }
    }
}
