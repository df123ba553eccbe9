/// Two nodes of the real ``VolumeEngine`` on in-memory disks joined by an in-memory
/// two-channel link, driven step by step: for unit tests and examples. Frames go through
/// ``FrameCodec`` both ways, exactly as over TCP. Every choice of what happens next (which
/// local I/O completes, which frame is delivered) comes from a seeded generator, so a run
/// replays exactly.
public struct InMemoryCluster {
    /// One node: its engine (run by an ``EngineDriver``, as the daemon's runtime runs it), its
    /// disk and what the engine did.
    public struct Node {
        /// The driver running the engine.
        var driver: EngineDriver
        /// What the engine did, as the node's host recorded it.
        let record: InMemoryNodeHost
        /// The engine.
        public var engine: VolumeEngine { driver.engine }
        /// The backing disk (data and internal meta-data).
        public let disk: MemoryBlockTarget
        /// The meta-data area on `disk`.
        public let metadata: MetadataDevice
        /// Local I/O submitted and not yet completed.
        public var pendingIO: [(LocalIOID, LocalIO)] { record.pendingIO.map { ($0.id, $0.io) } }
        /// Completed application requests, in completion order.
        public var completions: [(RequestID, Result<[UInt8], RequestError>)] { record.completions }
        /// Every state the engine announced.
        public var states: [ResourceState] { record.states }
        /// Log lines.
        public var log: [String] { record.log }
        /// When true, this node's local I/O does not complete until released.
        public var holdIO: Bool { record.holdIO }
        /// The engine gave up the connection (StandAlone).
        public var standAlone: Bool { record.standAlone }
        /// Frames this node sent, by type (for assertions).
        public var sentFrames: [FrameType: Int] { record.sentFrames }
        /// Timers the engine armed and that have not been fired (see ``InMemoryCluster/fireTimers(_:)``).
        public var armedTimers: [EngineTimer] { record.armedTimers }
        /// The engine let its disk go (`detachDisk`).
        public var diskDetached: Bool { record.diskDetached }
        /// Reads for the peer this node answered with held data.
        public var heldReads: Int { record.heldReads }
        /// Blocks (resync replies, replicated writes) this node received held.
        public var heldReceives: Int { record.heldReceives }
        /// Bytes of bitmap pages written to the meta-data.
        public var bitmapBytesWritten: Int { metadataTarget.bytesWrittenInWatchedRange }
        /// Storages of held data the node's driver keeps for its engine.
        public var heldStorageCount: Int { driver.heldStorageCount }
        /// The device the engine's meta-data writes go through (on `disk`): faults injected
        /// here fail meta-data writes only.
        public let metadataTarget: FaultInjectingBlockTarget
    }

    /// The two nodes.
    public private(set) var nodes: [Node]
    private let network: InMemoryNetwork
    /// Channels whose delivery is paused, per receiving node.
    public var pausedChannels: [Set<Channel>] {
        get { network.pausedChannels }
        set { network.pausedChannels = newValue }
    }
    /// True while both channels are up.
    public var connected: Bool { network.connected }
    /// Reads for the peer are answered with held data whose bytes are taken from the disk
    /// when the frame is sent (as a runtime that splices them does), not when read.
    public var holdsReadsForPeer = false
    /// Blocks that arrive (resync replies and replicated writes with data) are handed to the
    /// engine held, apart from their frame (as a runtime that splices them from the socket does).
    public var holdsReceivedBlocks = false
    private var random: SeededGenerator

    /// Two nodes with fresh meta-data (`create-md`) on disks of `diskSize` bytes.
    public init(diskSize: Int64, configuration: EngineConfiguration = EngineConfiguration(), seed: UInt64 = 1) throws {
        random = SeededGenerator(seed: seed)
        network = InMemoryNetwork()
        var nodes: [Node] = []
        for index in 0..<2 {
            let disk = MemoryBlockTarget(size: diskSize)
            let metadata = try MetadataDevice.internalMetadata(disk, name: "node\(index)")
            try metadata.create(force: true)
            nodes.append(try Self.attach(index, disk: disk, metadata: metadata, configuration: configuration,
                                         seed: seed &* 31 &+ UInt64(index), network: network))
        }
        self.nodes = nodes
    }

    /// Two connected nodes whose blank disks are declared in sync (`new-current-uuid
    /// --clear-bitmap`), node 0 Primary: the usual start of a replication test. `prepare` may
    /// change the nodes before they connect.
    public static func primaryPair(diskSize: Int64 = 8 << 20, configuration: EngineConfiguration = EngineConfiguration(), seed: UInt64 = 1,
                                   prepare: (inout InMemoryCluster) -> Void = { _ in }) throws -> InMemoryCluster {
        var pair = try InMemoryCluster(diskSize: diskSize, configuration: configuration, seed: seed)
        prepare(&pair)
        try pair.connect()
        try pair.run()
        for command in [{ (engine: inout VolumeEngine) in engine.newCurrentUUID(clearBitmap: true) }, { $0.promote(force: false) }] {
            if let error = try pair.admin(0, command) { throw error }
            try pair.run()
        }
        return pair
    }

    /// Attaches a disk as the daemon does (``VolumeAttachment``): replays the activity log
    /// if the meta-data was left unclean, reads superblock and bitmap.
    static func attach(_ index: Int, disk: MemoryBlockTarget, metadata: MetadataDevice, configuration: EngineConfiguration,
                       seed: UInt64, network: InMemoryNetwork, record: InMemoryNodeHost? = nil) throws -> Node {
        let attachment = try VolumeAttachment.attach(disk: disk, metadata: metadata, configuration: configuration,
                                                     metadataFlushes: true, entropySeed: seed)
        let host = record ?? InMemoryNodeHost(index: index, network: network)
        let faulty = FaultInjectingBlockTarget(disk)
        faulty.watchWrites(in: metadata.layout.bitmapOffset..<(metadata.layout.bitmapOffset + metadata.layout.bitmapBytes))
        let driver = EngineDriver(engine: attachment.engine, metadata: MetadataDevice(target: faulty, layout: metadata.layout, name: metadata.name), host: host)
        return Node(driver: driver, record: host, disk: disk, metadata: metadata, metadataTarget: faulty)
    }

    /// Writes data directly to a node's disk (data present before replication starts).
    public func preload(node: Int, offset: Int64, bytes: [UInt8]) throws {
        try nodes[node].disk.write(bytes, at: offset)
    }

    /// Connects the nodes (node 0 accepts the meta channel and holds RESOLVE_CONFLICTS).
    public mutating func connect() throws {
        guard !nodes[0].standAlone, !nodes[1].standAlone else { return }
        network.open()
        for index in 0..<2 { try handle(index, .connectionEstablished(resolveConflicts: index == 0)) }
    }

    /// Breaks the link: frames in flight are lost, both engines see the loss.
    public mutating func disconnect() throws {
        guard network.connected else { return }
        network.cut()
        for index in 0..<2 { try handle(index, .connectionLost) }
    }

    /// `attach` of a Diskless Secondary, as the daemon does it: the link drops, a new engine
    /// reads the disk's meta-data, and the nodes connect again (a resync brings the disk up to date).
    public mutating func reattach(_ node: Int, seed: UInt64 = 99) throws {
        try disconnect()
        let configuration = nodes[node].engine.configuration
        nodes[node] = try Self.attach(node, disk: nodes[node].disk, metadata: nodes[node].metadata, configuration: configuration,
                                      seed: seed, network: network, record: nodes[node].record)
        nodes[node].record.diskDetached = false
        _ = try admin(node) { $0.connect(discardMyData: false) }
        try connect()
    }

    /// `attach` of a Diskless Primary, as the daemon does it: a new engine reads the disk's
    /// meta-data and the running engine takes the disk over on its live connection. Returns
    /// the refusal, or nil.
    public mutating func attachInPlace(_ node: Int, seed: UInt64 = 99) throws -> VolumeEngine.AttachRefusal? {
        let attachment = try VolumeAttachment.attach(disk: nodes[node].disk, metadata: nodes[node].metadata,
                                                     configuration: nodes[node].engine.configuration, metadataFlushes: true, entropySeed: seed)
        let counted = MetadataDevice(target: nodes[node].metadataTarget, layout: nodes[node].metadata.layout, name: nodes[node].metadata.name)
        nodes[node].record.diskDetached = false
        switch nodes[node].driver.attachInPlace(attachment.engine, metadata: counted) {
        case .success:
            try deliverOutbox()
            return nil
        case .failure(let refusal):
            return refusal
        }
    }

    /// Submits an application request on a node.
    public mutating func request(_ node: Int, _ id: RequestID, _ request: ApplicationRequest) throws {
        try handle(node, .request(id, request))
    }

    /// Runs an admin command's effects.
    public mutating func admin(_ node: Int, _ command: (inout VolumeEngine) -> Result<[EngineEffect], StateChangeError>) throws -> StateChangeError? {
        let refusal = nodes[node].driver.command(command)
        try deliverOutbox()
        return refusal
    }

    /// Hands node `node`'s engine an event.
    private mutating func handle(_ node: Int, _ event: EngineEvent) throws {
        nodes[node].driver.handle(event)
        try deliverOutbox()
    }

    /// Moves what the hosts did into the network (and fails on a frame that does not decode).
    private mutating func deliverOutbox() throws {
        if let error = network.encodingError { throw error }
        // An orderly close's end reaches the peer once everything before it was delivered.
        while let loser = network.pendingLoss.popLast() {
            nodes[loser].driver.handle(.connectionLost)
        }
        if let error = network.encodingError { throw error }
    }

    /// The possible next steps.
    private func actions() -> [Action] {
        var actions: [Action] = []
        for index in 0..<2 {
            if !nodes[index].holdIO { for position in nodes[index].record.pendingIO.indices { actions.append(.completeIO(index, position)) } }
            for channel in [Channel.data, .meta] where network.canDeliver(from: index, channel) {
                actions.append(.deliver(from: index, channel))
            }
        }
        return actions
    }

    private enum Action {
        case completeIO(Int, Int)
        case deliver(from: Int, Channel)
    }

    /// Performs one step chosen by the seeded generator; false when nothing can happen.
    @discardableResult
    public mutating func step() throws -> Bool {
        let possible = actions()
        guard !possible.isEmpty else { return false }
        switch possible[Int(random.next() % UInt64(possible.count))] {
        case .completeIO(let node, let position):
            let pending = nodes[node].record.pendingIO.remove(at: position)
            let result = pending.io.perform(on: nodes[node].disk, held: pending.held)
            if holdsReadsForPeer, case .readForPeer(let offset, let length) = pending.io, case .success = result {
                nodes[node].record.heldReads += 1
                nodes[node].driver.completedHeldRead(pending.id, ReadWhenTaken(disk: nodes[node].disk, offset: offset, length: length))
            } else {
                nodes[node].driver.completed(pending.id, result)
            }
            try deliverOutbox()
        case .deliver(let from, let channel):
            let frame = network.take(from: from, channel)
            let data = FrameCodec.dataBytes(frame)
            if holdsReceivedBlocks, frame.type == .resyncReply || frame.type == .data, !data.isEmpty {
                nodes[1 - from].record.heldReceives += 1
                nodes[1 - from].driver.received(frame.replacingData([]), held: HeldBytesInMemory(data))
            } else {
                nodes[1 - from].driver.received(frame)
            }
            network.delivered(from: from)
            try deliverOutbox()
        }
        return true
    }

    /// Steps until nothing can happen (or `limit` steps); resync timers fire when idle.
    public mutating func run(limit: Int = 1_000_000) throws {
        var steps = 0
        while steps < limit {
            if try step() { steps += 1; continue }
            // Idle: let a sync target ask for more.
            var progressed = false
            for index in 0..<2 where nodes[index].engine.state.connection == .syncTarget {
                let sent = network.framesSent
                try handle(index, .resyncTick)
                if network.framesSent != sent || !nodes[index].record.pendingIO.isEmpty { progressed = true }
            }
            if !progressed || actions().isEmpty { return }
        }
    }

    /// The data area of a node's disk (what the application sees).
    public func data(_ node: Int) throws -> [UInt8] {
        try nodes[node].disk.read(count: Int(nodes[node].engine.size), at: 0)
    }

    /// Fires every armed timer of a node (virtual time jumps past them).
    public mutating func fireTimers(_ node: Int) throws {
        let timers = nodes[node].record.armedTimers
        nodes[node].record.armedTimers.removeAll()
        for timer in timers { try handle(node, .timer(timer)) }
    }

    /// Changes a node's engine directly (tests: configuration mismatches, fault setup).
    public mutating func modifyEngine(_ node: Int, _ body: (inout VolumeEngine) -> Void) { nodes[node].driver.modifyEngine(body) }

    /// Releases held I/O of a node.
    public mutating func setHoldIO(_ node: Int, _ hold: Bool) { nodes[node].record.holdIO = hold }
}

/// The two-channel link of an ``InMemoryCluster``: frames in flight per sender and channel,
/// encoded and decoded as over TCP.
final class InMemoryNetwork {
    /// Frames in flight: `links[from][channel]`.
    private var links: [[Channel: [Frame]]] = [[.data: [], .meta: []], [.data: [], .meta: []]]
    var pausedChannels: [Set<Channel>] = [[], []]
    private(set) var connected = false
    /// A node that closed the connection: the frames it sent before are still delivered (an
    /// orderly close), then its peer sees the loss.
    private var closedBy: Int?
    /// Nodes that must see the connection's loss now.
    var pendingLoss: [Int] = []
    /// Frames sent so far.
    private(set) var framesSent = 0
    /// A frame that did not survive encoding (a codec fault): the run fails with it.
    var encodingError: (any Error)?

    func open() {
        closedBy = nil
        links = [[.data: [], .meta: []], [.data: [], .meta: []]]
        connected = true
    }

    func cut() {
        connected = false
        closedBy = nil
        links = [[.data: [], .meta: []], [.data: [], .meta: []]]
    }

    func send(_ frame: Frame, from node: Int) {
        guard connected else { return }
        framesSent += 1
        let (headerBytes, payload) = FrameCodec.encode(frame)
        do {
            let decoded = try FrameCodec.decode(try FrameHeader(bytes: headerBytes), payload: payload)
            links[node][frame.type.channel, default: []].append(decoded)
        } catch {
            encodingError = error
        }
    }

    /// `node` closes in order: what it sent still reaches the peer, which sees the loss after
    /// it; frames towards `node` are dropped. True when there was a connection.
    func close(by node: Int) -> Bool {
        guard connected else { return false }
        connected = false
        links[1 - node] = [.data: [], .meta: []]
        if links[node].values.allSatisfy(\.isEmpty) {
            links = [[.data: [], .meta: []], [.data: [], .meta: []]]
            pendingLoss.append(1 - node)
        } else {
            closedBy = node
        }
        return true
    }

    func canDeliver(from node: Int, _ channel: Channel) -> Bool {
        !(links[node][channel] ?? []).isEmpty && !pausedChannels[1 - node].contains(channel) && (connected || closedBy == node)
    }

    func take(from node: Int, _ channel: Channel) -> Frame {
        links[node][channel]!.removeFirst()
    }

    /// A frame from `node` was handed to its peer: after an orderly close's last frame the peer
    /// sees the end.
    func delivered(from node: Int) {
        guard closedBy == node, links[node].values.allSatisfy(\.isEmpty) else { return }
        closedBy = nil
        links = [[.data: [], .meta: []], [.data: [], .meta: []]]
        pendingLoss.append(1 - node)
    }
}

/// What one node of an ``InMemoryCluster`` does for its engine: local I/O waits until the
/// cluster completes it, frames go into the network, everything else is recorded for tests.
final class InMemoryNodeHost: EngineHost {
    let index: Int
    unowned let network: InMemoryNetwork
    var pendingIO: [(id: LocalIOID, io: LocalIO, held: (any HeldDataStorage)?)] = []
    var completions: [(RequestID, Result<[UInt8], RequestError>)] = []
    var states: [ResourceState] = []
    var log: [String] = []
    var holdIO = false
    var standAlone = false
    var sentFrames: [FrameType: Int] = [:]
    var armedTimers: [EngineTimer] = []
    var diskDetached = false
    var heldReads = 0
    var heldReceives = 0

    init(index: Int, network: InMemoryNetwork) {
        self.index = index
        self.network = network
    }

    func send(_ frame: Frame, held: (any HeldDataStorage)?) {
        sentFrames[frame.type, default: 0] += 1
        guard network.connected else { return }
        guard let held else { return network.send(frame, from: index) }
        do {
            network.send(frame.replacingData(try held.takeBytes()), from: index)
        } catch {
            network.encodingError = error
        }
    }

    func startLocalIO(_ id: LocalIOID, _ io: LocalIO, held: (any HeldDataStorage)?) { pendingIO.append((id, io, held)) }
    func complete(_ id: RequestID, _ result: Result<[UInt8], RequestError>) { completions.append((id, result)) }
    func armTimer(_ timer: EngineTimer, milliseconds: Int) { armedTimers.append(timer) }
    func stateChanged(_ state: ResourceState) { states.append(state) }
    func log(_ line: String) { log.append(line) }
    func callHandler(_ name: String) { log.append("handler: \(name)") }

    func closeConnection(reason: String, standAlone: Bool) -> Bool {
        log.append("close: \(reason)")
        if standAlone { self.standAlone = true }
        return network.close(by: index)
    }

    func detachDisk(reason: String) {
        log.append("detach: \(reason)")
        diskDetached = true
    }
}

/// Held data that is read from its disk when it is taken (``InMemoryCluster/holdsReadsForPeer``).
final class ReadWhenTaken: HeldDataStorage, @unchecked Sendable {
    private let disk: any BlockTarget
    private let offset: Int64
    let count: Int

    init(disk: any BlockTarget, offset: Int64, length: Int) {
        self.disk = disk
        self.offset = offset
        count = length
    }

    func takeBytes() throws(BlockIOError) -> [UInt8] { try disk.read(count: count, at: offset) }
}
