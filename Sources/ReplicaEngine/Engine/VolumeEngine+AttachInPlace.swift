/// `attach` of a Diskless Primary without dropping its connection (as DRBD does it): the disk
/// is taken into use at once, the peer compares the generations, and when the disk holds an
/// older copy of the peer's data the peer resyncs it — this node a Primary SyncTarget meanwhile,
/// its reads served by the peer, its writes going to both disks.
extension VolumeEngine {
    /// Why an attach in place was refused; nothing changed.
    public struct AttachRefusal: Error, CustomStringConvertible, Sendable {
        /// What is wrong, in words for the operator.
        public let description: String
    }

    /// Attaches the disk of `fresh` (an engine just built from that disk's meta-data) to this
    /// Diskless Primary while it stays connected to its UpToDate peer. Refused, with nothing
    /// changed, unless this node is a connected Diskless Primary, no I/O of the detached disk is
    /// still in flight, the disk is large enough, and its generation is one the peer can resync
    /// from (the UUID comparison of reference 3.3 makes this node SyncTarget, or finds both equal).
    public mutating func attachInPlace(_ fresh: VolumeEngine) -> Result<[EngineEffect], AttachRefusal> {
        guard state.disk == .diskless, !hasNoDisk else {
            return .failure(AttachRefusal(description: hasNoDisk ? "the volume has 'disk none'" : "the volume is not Diskless (\(state.disk))"))
        }
        guard state.role == .primary else {
            return .failure(AttachRefusal(description: "only a Diskless Primary attaches in place; a Secondary reconnects with its disk"))
        }
        guard state.connection == .connected, state.peerDisk == .upToDate, let peerUUIDs = handshake.peerUUIDs, var peerState = handshake.peerState else {
            return .failure(AttachRefusal(description: "a Diskless Primary attaches only while Connected to a peer with UpToDate data (now \(state.connection), peer \(state.peerDisk))"))
        }
        guard ioPurpose.isEmpty else {
            return .failure(AttachRefusal(description: "I/O of the detached disk is still in flight; retry"))
        }
        guard fresh.localSize >= size else {
            return .failure(AttachRefusal(description: "the disk has room for \(fresh.localSize) bytes of data; the volume in use has \(size)"))
        }
        var attached = self
        attached.superblock = fresh.superblock
        attached.superblock.lastAgreedSizeSectors = UInt64(size / 512)
        attached.bitmap = fresh.bitmap
        attached.localSize = fresh.localSize
        attached.activityLog = fresh.activityLog
        // What the old disk's meta-data could not say was taken over by `fresh` (its attach
        // carried it); kept here, a later detach would hand it to the next attach again, in
        // place of the newer UUIDs (simulator seed 900813 with meta-data faults: a generation
        // started since went back to the one of the first failure, and the peer's older data
        // overwrote the newer).
        attached.unwrittenMetadata = nil
        // The data this node serves is the peer's: the disk is at best an older copy.
        attached.state.disk = min(fresh.state.disk, .outdated)
        peerState.role = state.peerRole
        peerState.disk = state.peerDisk
        let result = attached.syncHandshake(peerUUIDs: peerUUIDs, peerState: peerState)
        switch result.decision {
        case .syncTarget, .noSync:
            break
        default:
            return .failure(AttachRefusal(description: "the disk's data is not an older copy of the peer's (uuid_compare()=\(result.comparison.handshake) by rule \(result.comparison.rule); the disk's UUIDs \(fresh.superblock.uuids.text), the peer's \(peerUUIDs.uuids.text))"))
        }
        let diskState = attached.state.disk
        attached.state.disk = .diskless
        attached.handshake.attachingInPlace = true
        self = attached
        var effects: [EngineEffect] = [.log("attaching the disk while Primary (uuid_compare()=\(result.comparison.handshake) by rule \(result.comparison.rule)): the peer resyncs it")]
        effects.append(.send(.sizes(sizesPayload)))
        effects.append(.send(.uuids(uuidsPayload(extraFlags: diskState == .inconsistent ? 4 : 0))))
        // Negotiating until the peer answers (DRBD's D_NEGOTIATING): reads keep going to the
        // peer, and the meta-data does not call the disk consistent.
        // (One superblock write: the new disk's, with the agreed size and the new flags.)
        var next = state
        next.disk = .negotiating
        setState(next, &effects, persist: false)
        persistSuperblock(&effects)
        return .success(effects)
    }

    /// The peer (a Diskless Primary) attached a disk while connected: the sync handshake
    /// against its UUIDs, sent just before its state. This node becomes SyncSource of a bitmap
    /// resync (or a full one, as the comparison says); any other outcome refuses the attach —
    /// the peer then lets its disk go again and stays served from here.
    mutating func peerAttachedInPlace(_ peer: ResourceState, _ effects: inout [EngineEffect]) {
        guard let peerUUIDs = handshake.peerUUIDs else { return }
        let result = syncHandshake(peerUUIDs: peerUUIDs, peerState: peer)
        effects.append(.log("the peer attached its disk: uuid_compare()=\(result.comparison.handshake) by rule \(result.comparison.rule)"))
        let full: Bool
        switch result.decision {
        case .syncSource(let everything): full = everything
        case .noSync: full = false
        default:
            effects.append(.log("the peer's disk does not hold an older copy of this data: its attach is refused"))
            effects.append(.send(.state(state.wireValue)))
            return
        }
        if full { bitmap.setAll() }
        handshake.bitmapWordsReceived = 0
        // The target takes this generation over when the resync ends.
        effects.append(.send(.uuids(uuidsPayload())))
        var next = state
        next.peerRole = peer.role
        next.peerDisk = .inconsistent
        next.connection = .wfBitMapS
        setState(next, &effects)
        sendBitmap(&effects)
    }

    /// This node attached in place and hears back from the peer: a bitmap exchange and a
    /// resync to this node follow, or the peer refused and the disk goes again.
    mutating func attachInPlaceAnswered(_ peer: ResourceState, _ effects: inout [EngineEffect]) {
        handshake.attachingInPlace = false
        if peer.connection == .wfBitMapS {
            var next = state
            next.peerRole = peer.role
            next.connection = .wfBitMapT
            next.disk = .inconsistent
            handshake.bitmapWordsReceived = 0
            setState(next, &effects)
        } else {
            becomeDiskless(reason: "the peer refused the attach (its data does not follow from this disk's)", &effects)
        }
    }

    /// A write on a Primary SyncTarget that overlaps a resync request in flight waits for its
    /// answer: the answer may carry the block as it was before this write, and must not land
    /// on the disk after it.
    func waitsForResyncAnswer(_ range: Range<Int64>) -> Bool {
        (state.connection == .syncTarget || state.connection == .pausedSyncT) && resync.inFlight.values.contains { $0.overlaps(range) }
    }
}
