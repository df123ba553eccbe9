import ReplicaCore

/// What one simulated node does for its engine (through the same ``EngineDriver`` the daemon
/// runs): frames go on the simulated network with latency, local I/O completes on the
/// simulated disk after a seeded delay, timers run on virtual time, completions are checked
/// against the model of acknowledged data. Calls from an incarnation that crashed since are
/// ignored.
final class SimulationNodeHost: EngineHost {
    private unowned let simulation: Simulation
    private let index: Int
    private let incarnation: Int

    init(_ simulation: Simulation, _ index: Int, incarnation: Int) {
        self.simulation = simulation
        self.index = index
        self.incarnation = incarnation
    }

    private var current: Bool { simulation.nodes[index].incarnation == incarnation }

    func send(_ frame: Frame, held: (any HeldDataStorage)?) {
        guard current, simulation.connected else { return }
        guard held == nil else { return simulation.send(frame, held: held, from: index) }
        do {
            simulation.send(try simulation.wireRoundTrip(frame), held: nil, from: index)
        } catch {
            simulation.fail("node\(index) sent a \(frame.type) frame that does not decode: \(error)")
        }
    }

    func startLocalIO(_ id: LocalIOID, _ io: LocalIO, held: (any HeldDataStorage)?) {
        guard current else { return }
        let node = simulation.nodes[index]
        simulation.noteIfWatched(index, io, id, completed: nil, insideDriver: true)
        let latency = simulation.now < node.slowUntil ? 10_000 + simulation.random.next() % 90_000 : 5 + simulation.random.next() % 1_500
        simulation.schedule(.ioDone(node: index, incarnation: node.incarnation, id, io, held: held), after: latency)
        simulation.ioInFlight += 1
    }

    func complete(_ id: RequestID, _ result: Result<[UInt8], RequestError>) {
        guard current else { return }
        simulation.completed(id, result)
    }

    func armTimer(_ timer: EngineTimer, milliseconds: Int) {
        guard current else { return }
        simulation.schedule(.timer(node: index, incarnation: incarnation, timer), after: UInt64(milliseconds) * 1000)
    }

    func closeConnection(reason: String, standAlone: Bool) -> Bool {
        guard current else { return false }
        simulation.note("node\(index) closes the connection: \(reason)")
        let wasConnected = simulation.connected
        simulation.closeInOrder(by: index)
        return wasConnected
    }

    func stateChanged(_ state: ResourceState) {
        guard current else { return }
        simulation.stateChanged(index, state)
    }

    func log(_ line: String) {
        guard current else { return }
        simulation.note("node\(index): \(line)")
        if line.hasPrefix("Split-Brain detected") { simulation.splitBrainDetected = true }
    }

    func callHandler(_ name: String) {
        guard current else { return }
        simulation.note("node\(index) handler \(name)")
    }

    func detachDisk(reason: String) {
        guard current else { return }
        simulation.note("node\(index) detaches its disk: \(reason)", fault: true)
    }

    func metadataWriteFailed(_ write: MetadataWrite, _ error: BlockIOError) {
        guard current else { return }
        simulation.note("node\(index) meta-data write failed: \(write): \(error)", fault: true)
    }
}
