#if canImport(Glibc)
import Glibc
#endif
import ReplicaCore

/// Two nodes of the real ``VolumeEngine`` under one seeded scheduler: disks with volatile
/// caches, a two-channel network with latency that can be cut, a virtual clock, application
/// writes, reads, flushes and discards on the Primary, and faults — link cuts, crashes and
/// restarts of either node, failover to the survivor, split-brain recovery — with the
/// invariants checked as it runs and at the end. The same seed replays the same run.
public final class Simulation {
    final class Node {
        let disk: SimulatedDisk
        let metadata: MetadataDevice
        /// The running engine and its driver (nil while the node is down), and the host the
        /// driver acts on (kept here: the driver does not keep it).
        var driver: EngineDriver?
        var host: SimulationNodeHost?
        /// The engine (nil while the node is down).
        var engine: VolumeEngine? { driver?.engine }
        var incarnation = 0
        var standAloneSince: UInt64?
        var lastConnection: ConnectionState = .standAlone
        /// The node has been Primary while it saw itself disconnected, since its last handshake
        /// with its disk (it started a new data generation then, so a split brain shows in the UUIDs).
        var primaryApart = false
        /// The disk answers slowly (10–100 ms per I/O) until this virtual time.
        var slowUntil: UInt64 = 0
        init(disk: SimulatedDisk, metadata: MetadataDevice) {
            self.disk = disk
            self.metadata = metadata
        }
    }

    enum Event {
        /// A frame arrives; `held`: its data, taken from the sender's disk only now.
        case deliver(to: Int, Frame, held: (any HeldDataStorage)?, link: UInt64)
        case ioDone(node: Int, incarnation: Int, LocalIOID, LocalIO, held: (any HeldDataStorage)?)
        case timer(node: Int, incarnation: Int, EngineTimer)
        case peerNoticesLoss(node: Int, incarnation: Int, link: UInt64)
        case tryConnect
        case workload
        case fault
        case heal
        case restart(node: Int)
        case admin
        case diskRecovers(node: Int)
    }

    /// An application request in flight on the Primary.
    struct Pending {
        var node: Int
        var incarnation: Int
        var range: Range<Int64>
        var write: [UInt8]?
        var isFlush = false
    }

    let options: SimulationOptions
    let wireProtocol: String
    var random: SeededGenerator
    /// Which reads for the peer are held: a stream of its own, so that a seed's run (its
    /// faults, timings and workload) is the same with and without held reads.
    var heldChoices: SeededGenerator
    /// Chooses which resync blocks arrive held (a generator of its own, so that the other
    /// choices of a seed are those they were before held receives).
    var heldReceiveChoices: SeededGenerator
    /// Chooses meta-data write faults (``SimulationOptions/metadataFaults``), a stream of its own.
    var metadataFaultChoices: SeededGenerator
    var queue = EventQueue<Event>()
    var now: UInt64 = 0
    var nodes: [Node] = []
    let configuration: EngineConfiguration
    var dataSize: Int64 = 0
    // Network.
    var link: UInt64 = 0
    var connected = false
    var linkHealthy = true
    var lastDelivery: [[Channel: UInt64]] = [[:], [:]]
    var connectScheduled = false
    // Application and the model of what it may read.
    var primary = 0
    var model: [UInt8]
    var uncertain: [Range<Int64>] = []
    var unflushed: [Range<Int64>] = []
    var pending: [RequestID: Pending] = [:]
    var completedIDs: Set<RequestID> = []
    var nextRequest: RequestID = 1
    var operationsLeft: Int
    var healing = false
    // Report.
    var trace: [String] = []
    var faultLog: [String] = []
    var violation: String?
    var events = 0
    var acknowledgedWrites = 0

    /// A run with `options`.
    public init(_ options: SimulationOptions) throws {
        self.options = options
        var generator = SeededGenerator(seed: options.seed &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        let chosen = options.wireProtocol ?? ["A", "B", "C"][Int(generator.next() % 3)]
        random = generator
        heldChoices = SeededGenerator(seed: options.seed ^ 0x4845_4C44_5245_4144)
        heldReceiveChoices = SeededGenerator(seed: options.seed ^ 0x4845_4C44_5245_4356)
        metadataFaultChoices = SeededGenerator(seed: options.seed ^ 0x4D45_5441_4641_554C)
        wireProtocol = chosen
        var configuration = EngineConfiguration()
        configuration.wireProtocol = chosen
        configuration.onIOError = options.onIOError
        configuration.pingIntervalMilliseconds = 1000
        configuration.pingTimeoutMilliseconds = 500
        configuration.resyncPacing.planAheadSteps = 0
        configuration.resyncPacing.resyncRateKiB = 100 << 10
        // Split brains end StandAlone and the simulated administrator recovers them by hand,
        // with the application's node as the survivor (automatic policies may discard the
        // application's writes by design; unit and netns tests cover them).
        configuration.afterSB0 = .disconnect
        configuration.afterSB1 = .disconnect
        configuration.afterSB2 = .disconnect
        self.configuration = configuration
        operationsLeft = options.operations
        model = []
        for index in 0..<2 {
            let disk = SimulatedDisk(size: options.diskBytes + (1 << 20))
            let metadata = try MetadataDevice.internalMetadata(disk, name: "node\(index)")
            try metadata.create(force: true)
            nodes.append(Node(disk: disk, metadata: metadata))
        }
    }

    /// Runs to the end, or to the first violated invariant.
    public func run() -> SimulationOutcome {
        do {
            for index in 0..<2 { try start(index) }
            dataSize = nodes[0].engine!.size
            model = [UInt8](repeating: 0, count: Int(dataSize))
            schedule(.tryConnect, after: 1_000)
            schedule(.workload, after: 50_000)
            if options.faults { schedule(.fault, after: 100_000 + random.next() % 200_000) }
            schedule(.admin, after: 500_000)
            while violation == nil, let (time, event) = queue.pop() {
                now = time
                events += 1
                try handle(event)
                checkNoSilentDivergence()
                if healing && settled() { break }
                if now > 120_000_000 { fail("the run did not settle within 120 s of virtual time") }
            }
            if violation == nil { try finalChecks() }
        } catch {
            fail("error: \(error)")
        }
        return SimulationOutcome(seed: options.seed, wireProtocol: wireProtocol, violation: violation, faults: faultLog,
                                 trace: trace, events: events, acknowledgedWrites: acknowledgedWrites, virtualMilliseconds: now / 1000,
                                 replayCommand: options.replayCommand)
    }

    // MARK: - Nodes

    /// Starts node `index` on its disk; `carrying`: the engine that used the disk before in
    /// this process (an attach again after a detach), whose meta-data the disk may lack.
    func start(_ index: Int, carrying previous: VolumeEngine? = nil) throws {
        let node = nodes[index]
        let attachment = try VolumeAttachment.attach(disk: node.disk, metadata: node.metadata, configuration: configuration,
                                                     metadataFlushes: true, entropySeed: random.next(), carrying: previous)
        node.incarnation += 1
        let host = SimulationNodeHost(self, index, incarnation: node.incarnation)
        node.host = host
        node.driver = EngineDriver(engine: attachment.engine, metadata: node.metadata, metadataFlushes: true, host: host)
        node.standAloneSince = nil
        command(index) { $0.connect(discardMyData: false) }
    }

    func crash(_ index: Int) {
        let node = nodes[index]
        guard node.engine != nil else { return }
        let damaged = node.disk.crash(&random)
        node.driver = nil
        node.incarnation += 1
        note("node\(index) crashes (\(damaged) unflushed writes lost or torn)", fault: true)
        if connected { cutLink(noticedBy: [1 - index]) }
        if index == primary {
            // The application dies with the node: its requests in flight are gone, their
            // ranges hold old or new data; writes not yet flushed may be lost or torn.
            for (id, request) in pending where request.node == index {
                if request.write != nil { uncertain.append(request.range) }
                pending[id] = nil
            }
            uncertain += unflushed
            unflushed.removeAll()
        }
    }

    /// Runs an administrative command on node `index`'s engine (a refusal changes nothing).
    @discardableResult
    func command(_ index: Int, _ body: (inout VolumeEngine) -> Result<[EngineEffect], StateChangeError>) -> StateChangeError? {
        nodes[index].driver?.command(body)
    }

    /// Hands node `index`'s engine an event.
    func handle(_ index: Int, _ event: EngineEvent) {
        nodes[index].driver?.handle(event)
    }

    // MARK: - Events

    func schedule(_ event: Event, after microseconds: UInt64) {
        queue.push(event, at: now + microseconds)
    }

    func handle(_ event: Event) throws {
        switch event {
        case .deliver(let to, let sent, let held, let generation):
            framesInFlight -= 1
            guard generation == link, connected || closedBy == 1 - to, nodes[to].engine != nil else { return }
            let frame = try held.map { held throws -> Frame in try wireRoundTrip(sent.replacingData(held.takeBytes())) } ?? sent
            note("node\(to) <- \(frame.type)")
            // A block (resync reply or replicated write) is received held, as a spliced receive
            // is, about half of the time.
            let data = FrameCodec.dataBytes(frame)
            if !data.isEmpty, frame.type == .resyncReply || frame.type == .data, heldReceiveChoices.next() % 2 == 0 {
                nodes[to].driver?.received(frame.replacingData([]), held: HeldBytesInMemory(data))
            } else {
                nodes[to].driver?.received(frame)
            }
        case .ioDone(let index, let incarnation, let id, let io, let held):
            ioInFlight -= 1
            guard nodes[index].incarnation == incarnation, nodes[index].engine != nil else { return }
            let result = io.perform(on: nodes[index].disk, held: held)
            noteIfWatched(index, io, id, completed: result)
            // A read for the peer is held (as a spliced read is) about half of the time: its
            // data is then what the disk holds when the frame arrives, not when it was read.
            if case .readForPeer(let offset, let length) = io, case .success = result, heldChoices.next() % 2 == 0 {
                nodes[index].driver?.completedHeldRead(id, SimulatedHeldRead(disk: nodes[index].disk, range: offset..<(offset + Int64(length))))
            } else {
                nodes[index].driver?.completed(id, result)
            }
        case .timer(let index, let incarnation, let timer):
            guard nodes[index].incarnation == incarnation, nodes[index].engine != nil else { return }
            handle(index, .timer(timer))
        case .peerNoticesLoss(let index, let incarnation, let generation):
            guard nodes[index].incarnation == incarnation, nodes[index].engine != nil, generation == link else { return }
            if closedBy != nil {
                // The end of an orderly close: frames after it no longer arrive.
                closedBy = nil
                link += 1
            }
            handle(index, .connectionLost)
        case .tryConnect:
            connectScheduled = false
            try tryConnect()
        case .workload:
            try workload()
        case .fault:
            try fault()
        case .heal:
            linkHealthy = true
            note("the link is back", fault: true)
            try tryConnect()
        case .restart(let index):
            guard nodes[index].engine == nil else { return }
            note("node\(index) restarts", fault: true)
            do {
                try start(index)
            } catch let error as MetadataError where nodes[index].disk.isFailing {
                // The attach cannot write its superblock (the meta-data area fails writes): it
                // is refused, as `up` would be, and the node stays down until a later try.
                note("node\(index) cannot attach its disk: \(error)", fault: true)
                schedule(.restart(node: index), after: 200_000 + random.next() % 300_000)
                return
            }
            try tryConnect()
        case .diskRecovers(let index):
            nodes[index].disk.failing = nil
            nodes[index].disk.failingWrites = nil
            note("node\(index)'s disk works again", fault: true)
        case .admin:
            try admin()
            if !healing || !settled() { schedule(.admin, after: 200_000) }
        }
    }

    func tryConnect() throws {
        guard !connected, linkHealthy, nodes.allSatisfy({ $0.engine?.state.connection == .wfConnection }) else {
            if !connected, !connectScheduled { connectScheduled = true; schedule(.tryConnect, after: 100_000 + random.next() % 200_000) }
            return
        }
        connected = true
        link += 1
        closedBy = nil
        lastDelivery = [[:], [:]]
        note("connection established")
        for index in 0..<2 { handle(index, .connectionEstablished(resolveConflicts: index == 0)) }
    }

    /// A node closes the connection in order (FIN after what it sent): its frames in flight
    /// still arrive, frames towards it are dropped, and its peer sees the end after the last.
    func closeInOrder(by index: Int) {
        guard connected else { return }
        connected = false
        closedBy = index
        let last = max(now, lastDelivery[index].values.max() ?? now)
        let peer = 1 - index
        if nodes[peer].engine != nil {
            queue.push(.peerNoticesLoss(node: peer, incarnation: nodes[peer].incarnation, link: link), at: last + 1 + random.next() % 1_000)
        }
    }

    /// The link breaks: frames in flight are lost; each node in `noticedBy` sees it soon.
    func cutLink(noticedBy: [Int]) {
        guard connected || closedBy != nil else { return }
        connected = false
        closedBy = nil
        link += 1
        for index in noticedBy where nodes[index].engine != nil {
            schedule(.peerNoticesLoss(node: index, incarnation: nodes[index].incarnation, link: link), after: 1_000 + random.next() % 500_000)
        }
    }

    // MARK: - Effects

    /// `frame` as the peer decodes it from its encoding.
    func wireRoundTrip(_ frame: Frame) throws -> Frame {
        let (header, payload) = FrameCodec.encode(frame)
        return try FrameCodec.decode(try FrameHeader(bytes: header), payload: payload)
    }

    /// Puts `frame` (and its held data) on the network from node `index`.
    func send(_ frame: Frame, held: (any HeldDataStorage)?, from index: Int) {
        let channel = frame.type.channel
        let bytes = FrameCodec.encodeFixedPayload(frame).count + (held?.count ?? FrameCodec.dataBytes(frame).count)
        // Latency, and the link's bandwidth (1 GB/s: 1 µs per KB) for the bytes queued before.
        let at = max(lastDelivery[index][channel] ?? 0, now + 20 + random.next() % 400) + UInt64(bytes / 1000)
        lastDelivery[index][channel] = at
        queue.push(.deliver(to: 1 - index, frame, held: held, link: link), at: at)
        framesInFlight += 1
    }

    /// A state node `index` announced: checked against DRBD's state rules, and followed for
    /// the split-brain invariant.
    func stateChanged(_ index: Int, _ state: ResourceState) {
        let node = nodes[index]
        note("node\(index) \(state)")
        // A Diskless Primary, or a Primary whose disk was being resynced from its peer,
        // that lost its peer or its peer's disk is left without data (its I/O fails), as
        // DRBD allows after a connection loss or an I/O error; every other state must be
        // valid.
        let primaryWithoutData = state.role == .primary && state.disk <= .inconsistent
            && (state.connection < .connected || state.peerDisk < .upToDate)
        if !primaryWithoutData, let error = StateRules.validate(state, StateRuleContext()) {
            fail("node\(index) announced an invalid state \(state): \(error)")
        }
        if state.connection == .standAlone { node.standAloneSince = node.standAloneSince ?? now } else { node.standAloneSince = nil }
        let previous = node.lastConnection
        node.lastConnection = state.connection
        // (A Primary without data of its own apart — Diskless, or an interrupted
        // SyncTarget — writes nothing: it makes no split brain.)
        // (Nor one promoted while its meta-data area fails writes: the new current UUID never
        // reaches the disk, the disk is let go at once and nothing is written to it.)
        if state.role == .primary, state.connection < .connected, state.disk > .inconsistent, node.disk.failingWrites == nil { node.primaryApart = true }
        if index == primary, state.disk <= .inconsistent, state.connection < .connected || state.peerDisk < .upToDate {
            // The application's node has no data of its own (Diskless, or a SyncTarget
            // whose disk the peer's resync overwrites) and lost its peer, or its peer's
            // disk, which held the only copy: what it wrote without a flush since may be
            // gone (under protocols A and B it may never have reached that disk), as on
            // a local disk that lost power.
            uncertain += unflushed
            unflushed.removeAll()
        }
        // (A connection with a Diskless side compares no data and merges nothing: the
        // check waits for the handshake of two disks.)
        guard state.connection >= .connected, previous == .wfReportParams, state.disk > .diskless, state.peerDisk > .diskless else { return }
        let settled = state.connection == .connected || state.connection >= .syncSource
        if splitBrainPending, nodes.allSatisfy(\.primaryApart) {
            // Both nodes were Primary apart: the handshake must have seen it.
            guard splitBrainDetected else { return fail("node\(index) reached \(state.connection) after a split brain that no handshake detected") }
            if settled {
                splitBrainPending = false
                splitBrainDetected = false
                for other in nodes { other.primaryApart = false }
            }
        } else {
            // Not a split brain: the old Primary died or stepped down before it
            // noticed the separation (a failover; what it wrote was never acknowledged
            // under protocol C).
            splitBrainPending = false
            node.primaryApart = false
        }
    }

    // MARK: - Application

    func workload() throws {
        defer { if operationsLeft > 0 { schedule(.workload, after: 200 + random.next() % 3_000) } }
        guard operationsLeft > 0, pending.count < 8, let engine = nodes[primary].engine, engine.state.role == .primary else { return }
        operationsLeft -= 1
        let id = nextRequest
        nextRequest += 1
        let choice = random.next() % 10
        if choice == 0 {
            pending[id] = Pending(node: primary, incarnation: nodes[primary].incarnation, range: 0..<0, isFlush: true)
            // Writes acknowledged before a flush is submitted are durable once it completes.
            let covered = unflushed
            flushCoverage[id] = covered
            handle(primary, .request(id, .flush))
            return
        }
        let sectors = dataSize / 512
        let length = choice < 8 ? Int64(1 + random.next() % (random.next() % 4 == 0 ? 2048 : 16)) * 512 : Int64(1 + random.next() % 64) * 512
        let offset = Int64(random.next() % UInt64(sectors - length / 512)) * 512
        let range = offset..<(offset + length)
        guard !pending.values.contains(where: { $0.write != nil && $0.range.overlaps(range) || $0.write == nil && !$0.isFlush && choice < 8 && $0.range.overlaps(range) }) else { return }
        let request: ApplicationRequest
        switch choice {
        case 1...6:
            var bytes = [UInt8](repeating: 0, count: Int(length))
            bytes.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for index in words.indices { words[index] = random.next() }
            }
            pending[id] = Pending(node: primary, incarnation: nodes[primary].incarnation, range: range, write: bytes)
            request = .write(offset: offset, data: bytes)
        case 7:
            pending[id] = Pending(node: primary, incarnation: nodes[primary].incarnation, range: range, write: [UInt8](repeating: 0, count: Int(length)))
            request = .discard(offset: offset, length: length)
        default:
            pending[id] = Pending(node: primary, incarnation: nodes[primary].incarnation, range: range, write: nil)
            request = .read(offset: offset, length: Int(length))
        }
        handle(primary, .request(id, request))
    }

    var flushCoverage: [RequestID: [Range<Int64>]] = [:]
    var framesInFlight = 0
    var lastResyncByReconnect: UInt64 = 0
    /// The node that closed the connection in order, until its peer has seen the end.
    var closedBy: Int?
    var ioInFlight = 0
    var lastDivergenceCheck: UInt64 = 0
    /// An operator promoted the other node while the nodes were apart.
    var splitBrainPending = false
    var splitBrainDetected = false

    func completed(_ id: RequestID, _ result: Result<[UInt8], RequestError>) {
        guard !completedIDs.contains(id) else { return fail("request \(id) completed twice") }
        completedIDs.insert(id)
        guard let request = pending.removeValue(forKey: id) else { return fail("request \(id) completed but was never issued (or was lost with its node)") }
        guard case .success(let data) = result else {
            note("request \(id) failed: \(result)")
            if let write = request.write, !write.isEmpty { uncertain.append(request.range) }
            if request.isFlush {
                // As with fsync's EIO: the writes it was to make durable may be lost.
                let covered = flushCoverage.removeValue(forKey: id) ?? []
                uncertain += covered
                unflushed.removeAll { range in covered.contains(range) }
            }
            return
        }
        if request.isFlush {
            let covered = flushCoverage.removeValue(forKey: id) ?? []
            unflushed.removeAll { range in covered.contains(range) }
            return
        }
        if let write = request.write {
            acknowledgedWrites += 1
            model.withUnsafeMutableBytes { raw in
                write.withUnsafeBytes { (raw.baseAddress! + Int(request.range.lowerBound)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            uncertain.removeAll { request.range.lowerBound <= $0.lowerBound && $0.upperBound <= request.range.upperBound }
            unflushed.append(request.range)
        } else if !uncertain.contains(where: { $0.overlaps(request.range) }) {
            if !sameBytes(data, 0, model, Int(request.range.lowerBound), data.count) { fail("read \(id) at \(request.range) returned data that no acknowledged write left there") }
        }
    }

}
