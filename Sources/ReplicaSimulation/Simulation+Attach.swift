import ReplicaCore

/// The simulated administrator's `attach` of a Diskless node.
extension Simulation {
    /// `attach` of a Diskless node, as the daemon does it: the node goes down cleanly (its
    /// link ends) and comes up again on its disk; the handshake resyncs what it missed.
    func reattach(_ index: Int) throws {
        let node = nodes[index]
        guard node.engine?.isDetached == true, node.engine?.state.role == .secondary else { return }
        note("admin: attach on node\(index) (its disk works again)", fault: true)
        let previous = node.engine
        node.driver = nil
        node.incarnation += 1
        if connected { cutLink(noticedBy: [1 - index]) }
        try start(index, carrying: previous)
        try tryConnect()
    }

    /// `attach` of a Diskless Primary, as the daemon does it: the running engine takes the
    /// disk over on its live connection and is resynced while it serves. False when the engine
    /// refuses: nothing changed (the superblock is written back as found), as with the daemon.
    func attachInPlace(_ index: Int) throws -> Bool {
        let node = nodes[index]
        guard node.engine?.isDetached == true, node.engine?.state.role == .primary,
              node.engine?.state.connection == .connected, node.engine?.state.peerDisk == .upToDate else { return false }
        let attachment = try VolumeAttachment.attach(disk: node.disk, metadata: node.metadata, configuration: configuration,
                                                     metadataFlushes: true, entropySeed: random.next(), carrying: node.engine)
        switch node.driver!.attachInPlace(attachment.engine, metadata: node.metadata) {
        case .success:
            note("admin: attach on the Diskless Primary node\(index) (its disk works again), resynced while it serves", fault: true)
            return true
        case .failure(let refusal):
            note("admin: attach on node\(index) refused: \(refusal)")
            try attachment.abandon()
            return false
        }
    }
}
