import Foundation
import Logging
import Synchronization

extension ReplicationRuntime {
    /// Starts connecting to the peer (`connect`): every volume leaves StandAlone and the
    /// transport starts listening and connecting.
    /// - Throws: the refusal of a volume's engine, or the transport's failure to start (a
    ///   busy port, an address that is not this host's), with nothing left running.
    public func connect(discardMyData: Bool = false) throws {
        let (refusal, starts): (StateChangeError?, Bool) = engineQueue.sync {
            var refusal: StateChangeError?
            var starts = false
            step {
                for volume in volumes where volume.driver.engine.state.connection == .standAlone {
                    if let refused = volume.driver.command({ $0.connect(discardMyData: discardMyData) }) {
                        refusal = refused
                        return
                    }
                }
                if !transportRunning {
                    transportRunning = true
                    starts = true
                }
            }
            return (refusal, starts)
        }
        if let refusal { throw refusal }
        guard starts else { return }
        // Outside the engine queue: starting may wait for the threads of an earlier start.
        do {
            try transport.start(handler: self)
        } catch {
            logger.error("cannot start the \(transport.kind) transport: \(error)")
            engineQueue.sync {
                step {
                    transportRunning = false
                    published.withLock { $0.lastCloseReason = "\(error)" }
                    for volume in volumes { volume.driver.command { engine in engine.state.connection == .standAlone ? .success([]) : engine.disconnect() } }
                }
            }
            throw error
        }
    }

    /// Disconnects and stays StandAlone (`disconnect`): the peer hears why, the link closes in
    /// order, the transport stops.
    /// - Throws: ``StateChangeError/alreadyStandAlone`` when there was nothing to disconnect.
    public func disconnect() throws(StateChangeError) {
        let refusal: StateChangeError? = engineQueue.sync {
            var refusals: [StateChangeError] = []
            step {
                for volume in volumes {
                    if let refusal = volume.driver.command({ $0.disconnect() }) { refusals.append(refusal) }
                }
                if transportRunning {
                    transport.stopConnecting()
                    transportRunning = false
                }
            }
            // Refused by every volume: it was StandAlone already.
            return refusals.count == volumes.count ? refusals.first : nil
        }
        if let refusal { throw refusal }
    }

    /// Runs an admin command of the engines on the engine queue: on `volume`, or (nil) on every
    /// volume in turn, as DRBD applies a resource's role to all its volumes. A refusal stops
    /// there: for `primary`/`secondary` on several volumes, the volumes already changed are
    /// changed back (`undo`), so the resource's volumes keep one role.
    public func admin(volume: UInt16? = nil, undo: (@Sendable (inout VolumeEngine) -> Result<[EngineEffect], StateChangeError>)? = nil,
                      _ command: @escaping @Sendable (inout VolumeEngine) -> Result<[EngineEffect], StateChangeError>) -> Result<Void, StateChangeError> {
        engineQueue.sync {
            var outcome: Result<Void, StateChangeError> = .success(())
            step {
                let targets = volume.map { number in volumes.filter { $0.number == number } } ?? volumes
                guard !targets.isEmpty else {
                    outcome = .failure(.notSupported)  // (callers check the volume first)
                    return
                }
                var changed: [VolumeRuntime] = []
                for target in targets {
                    if let refusal = target.driver.command(command) {
                        if let undo { for done in changed.reversed() { done.driver.command(undo) } }
                        outcome = .failure(refusal)
                        return
                    }
                    changed.append(target)
                }
            }
            return outcome
        }
    }

    /// The engine of each volume as it is now (copies): what a re-attach of the same disks in
    /// this process passes as `carrying` (``VolumeAttachment/attach(_:net:entropySeed:carrying:)``),
    /// so that meta-data a failed write left behind, and whether this node started its current
    /// generation, survive it.
    public func engines() -> [UInt16: VolumeEngine] {
        engineQueue.sync {
            Dictionary(uniqueKeysWithValues: volumes.map { ($0.number, $0.driver.engine) })
        }
    }

    /// `attach` of a Diskless Primary volume on its live connection
    /// (``VolumeEngine/attachInPlace(_:)``): the attachment's disk and meta-data take the
    /// detached ones' place, and the peer resyncs the disk while this node goes on serving.
    public func attachInPlace(_ attachment: VolumeAttachment, volume number: UInt16 = 0) -> Result<Void, VolumeEngine.AttachRefusal> {
        engineQueue.sync {
            var outcome: Result<Void, VolumeEngine.AttachRefusal> = .success(())
            step {
                guard let volume = volume(number) else { return }
                let previousDisk = volume.disk
                volume.replaceDisk(attachment.disk)
                outcome = volume.driver.attachInPlace(attachment.engine, metadata: attachment.metadata)
                if case .failure = outcome, let previousDisk { volume.replaceDisk(previousDisk) }
            }
            return outcome
        }
    }

    /// How ``shutdown(timeout:)`` ended.
    public struct ShutdownReport: Sendable, Equatable {
        /// Every request and local I/O finished within the time: the meta-data was marked
        /// clean (the next attach replays nothing).
        public var drained: Bool
        /// What did not go as asked (a refused demotion, requests still in flight, a meta-data
        /// write that failed), for the log and the caller.
        public var problems: [String]
    }

    /// `down`: demotes if Primary, disconnects in order, stops the transport, lets the
    /// requests and local I/O in flight finish — for at most `timeout` seconds — then writes
    /// the bitmap and marks the meta-data clean. What is still in flight after `timeout`
    /// leaves the meta-data unclean, so the next attach replays the activity log (nothing
    /// acknowledged is lost either way).
    @discardableResult
    public func shutdown(timeout: Double = 10) -> ShutdownReport {
        var problems: [String] = []
        engineQueue.sync {
            step {
                for volume in volumes {
                    if let refusal = volume.driver.command({ $0.demote() }) {
                        problems.append("volume \(volume.number): demote refused: \(refusal)")
                    }
                }
                for volume in volumes where volume.driver.engine.state.connection != .standAlone {
                    if let refusal = volume.driver.command({ $0.disconnect() }) {
                        problems.append("volume \(volume.number): disconnect refused: \(refusal)")
                    }
                }
                failHeldRequests(.aborted)
            }
        }
        let drained = waitForResource(timeout: timeout) { snapshot in
            snapshot.volumes.allSatisfy { $0.local == 0 && $0.pendingRequests == 0 }
        }
        transport.stop()
        for thread in closingLinks.withLock({ links -> [JoinableThread] in defer { links.removeAll() }; return links }) { thread.join() }
        engineQueue.sync {
            transportRunning = false
            link = nil
            for volume in volumes {
                if !drained {
                    let snapshot = self.snapshot(volume: volume.number)
                    problems.append("volume \(volume.number): \(snapshot?.pendingRequests ?? 0) requests and \(snapshot?.local ?? 0) local I/Os still in flight after \(timeout) s: the meta-data stays unclean (the next attach replays the activity log)")
                }
                // A detached engine wrote its meta-data when it let the disk go.
                guard let metadata = volume.driver.metadata, !volume.driver.engine.isDetached else { continue }
                var superblock = volume.driver.engine.superblock
                if drained {
                    superblock.magic = Superblock.magicV08
                    superblock.flags.insert(.activityLogClean)
                }
                do {
                    try metadata.writeBitmap(volume.driver.engine.bitmap, superblock, flush: true)
                    try metadata.writeSuperblock(superblock, flush: true)
                } catch {
                    problems.append("volume \(volume.number): \(error)")
                }
            }
        }
        for problem in problems { logger.error("down: \(problem)") }
        return ShutdownReport(drained: drained, problems: problems)
    }
}
