#if canImport(Glibc)
import Glibc
#endif
import ReplicaCore

/// Faults and the simulated cluster manager (administrator).
extension Simulation {
    // MARK: - Faults and the cluster manager

    func fault() throws {
        defer { if operationsLeft > 0 { schedule(.fault, after: 50_000 + random.next() % 400_000) } else { startHealing() } }
        guard operationsLeft > 0 else { return }
        if options.metadataFaults, metadataFaultChoices.next() % 4 == 0 {
            // The meta-data area of one node fails its writes for a while.
            let index = Int(metadataFaultChoices.next() % 2)
            if !nodes[index].disk.isFailing {
                let area = nodes[index].metadata.layout
                nodes[index].disk.failingWrites = area.bitmapOffset..<(area.superblockOffset + MetadataLayout.superblockSize)
                note("node\(index)'s meta-data area fails writes", fault: true)
                schedule(.diskRecovers(node: index), after: 20_000 + metadataFaultChoices.next() % 500_000)
            }
        }
        switch random.next() % 9 {
        case 8:
            let index = Int(random.next() % 2)
            nodes[index].slowUntil = now + 100_000 + random.next() % 1_000_000
            note("node\(index)'s disk turns slow (10–100 ms per I/O) until \(nodes[index].slowUntil / 1000) ms", fault: true)
        case 7:
            // A failing area of one disk for a while: I/O there returns EIO.
            let index = Int(random.next() % 2)
            guard nodes[index].disk.failing == nil else { return }
            let length = Int64(1 + random.next() % 256) * 4096
            let start = Int64(random.next() % UInt64((dataSize - length) / 4096)) * 4096
            nodes[index].disk.failing = start..<(start + length)
            note("node\(index)'s disk fails I/O at \(start)+\(length)", fault: true)
            schedule(.diskRecovers(node: index), after: 20_000 + random.next() % 500_000)
        case 6:
            // An operator error: the other node promoted while the nodes are apart (DRBD allows
            // it without fencing); the next connection must detect the split brain.
            let other = 1 - primary
            guard !connected, nodes[primary].engine?.state.role == .primary, let engine = nodes[other].engine,
                  engine.state.role == .secondary, engine.state.disk == .upToDate, engine.state.connection < .connected else { return }
            note("operator error: node\(other) promoted while apart", fault: true)
            if command(other, { $0.promote(force: false) }) == nil { splitBrainPending = true }
        case 0, 1, 2:
            guard connected else { return }
            linkHealthy = false
            note("the link is cut", fault: true)
            cutLink(noticedBy: [0, 1])
            schedule(.heal, after: 50_000 + random.next() % 1_500_000)
        case 3, 4:
            let victim = 1 - primary
            guard nodes[victim].engine != nil else { return }
            crash(victim)
            schedule(.restart(node: victim), after: 50_000 + random.next() % 1_000_000)
        default:
            guard wireProtocol == "C", nodes[primary].engine != nil, nodes[1 - primary].engine != nil else { return }
            let old = primary
            // Failover is safe only to a survivor that was Connected and UpToDate when the
            // Primary died (a cluster manager with fencing refuses an outdated one).
            let inSync = [old, 1 - old].allSatisfy { index in
                let state = nodes[index].engine?.state
                return state?.connection == .connected && state?.disk == .upToDate && state?.peerDisk == .upToDate
            }
            crash(old)
            if inSync, nodes[1 - old].engine != nil {
                // Failover, as Pacemaker would: promote the survivor.
                primary = 1 - old
                note("failover: node\(primary) promoted", fault: true)
                command(primary) { $0.promote(force: false) }
            }
            schedule(.restart(node: old), after: 100_000 + random.next() % 1_000_000)
        }
    }

    func startHealing() {
        guard !healing else { return }
        healing = true
        note("healing: no more faults; the link is restored and every node restarted", fault: true)
        linkHealthy = true
        for index in 0..<2 {
            nodes[index].disk.failing = nil
            nodes[index].disk.failingWrites = nil
        }
        for index in 0..<2 where nodes[index].engine == nil { schedule(.restart(node: index), after: 1_000) }
        schedule(.tryConnect, after: 2_000)
    }

    /// The administrator: the application's node is Primary (promoted again after a restart);
    /// a split brain is resolved with the application's node as survivor.
    func admin() throws {
        guard let engine = nodes[primary].engine else { return }
        // First connection of two blank disks: skip the initial sync (new-current-uuid --clear-bitmap).
        if engine.state.connection == .connected, engine.state.disk == .inconsistent, engine.state.peerDisk == .inconsistent,
           engine.superblock.uuids.current & ~1 == GenerationUUIDs.justCreatedValue {
            command(primary) { $0.newCurrentUUID(clearBitmap: true) }
            return
        }
        // Promote only what is known to hold the newest data: connected to a peer that is
        // UpToDate too (a cluster manager with fencing would not promote a node that merely
        // lost sight of its peer).
        if engine.state.role != .primary, nodes[1 - primary].engine?.state.role != .primary,
           engine.state.connection == .connected, engine.state.disk == .upToDate, engine.state.peerDisk == .upToDate {
            command(primary) { $0.promote(force: false) }
        }
        // A Diskless node gets its disk back once the disk works: a Secondary at once, the
        // application's Primary in place while connected to its UpToDate peer (resynced while
        // it serves), else only when healing (it steps down for it).
        for index in 0..<2 where nodes[index].engine?.isDetached == true && !nodes[index].disk.isFailing {
            if index == primary, nodes[index].engine?.state.role == .primary {
                if try attachInPlace(index) { return }
                guard healing, pending.isEmpty else { continue }
                command(index) { $0.demote() }
            } else if nodes[index].engine?.state.role == .primary {
                // The other node, promoted apart by an operator's error and left without its
                // disk: it has no application; it steps down to take its disk back.
                command(index) { $0.demote() }
            }
            try reattach(index)
            return
        }
        // Blocks marked out of sync while Connected (after an I/O error) are resynced the way an
        // operator does it: disconnect and connect again.
        if healing, connected, pending.isEmpty, queueIsQuietEnough, now - lastResyncByReconnect > 1_000_000,
           nodes.allSatisfy({ $0.engine?.state.connection == .connected }),
           nodes.contains(where: { $0.engine!.bitmap.setCount > 0 }) {
            lastResyncByReconnect = now
            note("admin: disconnect and connect to resync the blocks marked out of sync", fault: true)
            command(primary) { $0.disconnect() }
            command(primary) { $0.connect(discardMyData: false) }
            try tryConnect()
            return
        }
        for index in 0..<2 {
            guard let since = nodes[index].standAloneSince, now - since > 300_000, nodes[index].engine != nil else { continue }
            let victim = 1 - primary
            note("admin: split-brain recovery, node\(victim) discards its data", fault: true)
            if nodes[victim].engine?.state.role == .primary { command(victim) { $0.demote() } }
            if nodes[victim].engine?.state.connection == .standAlone { command(victim) { $0.connect(discardMyData: true) } }
            if nodes[primary].engine?.state.connection == .standAlone { command(primary) { $0.connect(discardMyData: false) } }
            try tryConnect()
            break
        }
    }
}
