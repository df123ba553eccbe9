import ReplicaCore

extension Simulation {
    /// Notes a local I/O that touches the watched block (`SimulationOptions.watchedBlock`):
    /// when the engine submits it (`completed` nil) and when the disk completes it, with the
    /// node's bitmap bit for the block at that moment.
    /// (Called by a node's host while its driver runs, `insideDriver`: the engine cannot be
    /// read then, and the bit is not shown.)
    func noteIfWatched(_ index: Int, _ io: LocalIO, _ id: LocalIOID, completed result: LocalIOResult?, insideDriver: Bool = false) {
        guard let block = options.watchedBlock, io.range.overlaps(block * 4096..<(block + 1) * 4096) else { return }
        let what: String
        switch io {
        case .read(let offset, let length): what = "read \(offset)+\(length)"
        case .readForPeer(let offset, let length): what = "read for the peer \(offset)+\(length)"
        case .write(let offset, let data): what = "write \(offset)+\(data.count) (first byte \(data.first ?? 0))"
        case .writeHeld(let offset, let data): what = "write \(offset)+\(data.count) (held)"
        case .discard(let offset, let length): what = "discard \(offset)+\(length)"
        case .flush: what = "flush"
        }
        let bit = insideDriver ? "?" : nodes[index].engine.map { $0.bitmap.isSet(block) ? "set" : "clear" } ?? "?"
        switch result {
        case nil: note("watch: node\(index) submits I/O \(id): \(what); bit \(bit)")
        case .success?: note("watch: node\(index) completed I/O \(id): \(what); bit \(bit)")
        case .failure(let error)?: note("watch: node\(index) failed I/O \(id): \(what): \(error); bit \(bit)")
        }
    }
}
