/// An engine that takes over a disk from the engine that used it before in the same process
/// (a re-attach after a detach).
extension VolumeEngine {
    /// Keeps what `previous` knew of the current data generation beyond the meta-data: that
    /// this node started it itself, apart from its peer. Without it a promotion apart after
    /// the re-attach would take the generation for one started elsewhere and start another,
    /// moving the bitmap UUID the peer diverged from into history, where the next handshake
    /// finds no relation ("Unrelated data") instead of the split brain it is (simulator seed
    /// 747 with meta-data faults). Only when both engines hold the same current UUID.
    public mutating func succeed(_ previous: VolumeEngine) {
        let known = previous.unwrittenMetadata?.superblock.uuids ?? previous.superblock.uuids
        guard known.current & ~1 == superblock.uuids.current & ~1, known.bitmap & ~1 == superblock.uuids.bitmap & ~1 else { return }
        startedCurrentGeneration = startedCurrentGeneration || previous.startedCurrentGeneration
    }
}
