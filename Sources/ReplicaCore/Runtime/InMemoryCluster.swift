/// Two nodes of the real ``VolumeEngine`` on in-memory disks joined by an in-memory
/// two-channel link, driven step by step: for unit tests and examples. Frames go through
/// ``FrameCodec`` both ways, exactly as over TCP. Every choice of what happens next (which
/// local I/O completes, which frame is delivered) comes from a seeded generator, so a run
/// replays exactly.
public struct InMemoryCluster {
    /// One node: its engine, its disk and what the engine did.
    public struct Node {
        /// The engine.
        public var engine: VolumeEngine
        /// The backing disk (data and internal meta-data).
        public let disk: MemoryBlockTarget
        /// The meta-data area on `disk`.
        public let metadata: MetadataDevice
        /// Local I/O submitted and not yet completed.
        public var pendingIO: [(LocalIOID, LocalIO)] = []
        /// Completed application requests, in completion order.
        public var completions: [(RequestID, Result<[UInt8], RequestError>)] = []
        /// Every state the engine announced.
        public var states: [ResourceState] = []
        /// Log lines.
        public var log: [String] = []
        /// When true, this node's local I/O does not complete until released.
        public var holdIO = false
        /// The engine gave up the connection (StandAlone).
        public var standAlone = false
        /// Frames this node sent, by type (for assertions).
        public var sentFrames: [FrameType: Int] = [:]
        /// Timers the engine armed and that have not been fired (see ``InMemoryCluster/fireTimers(_:)``).
        public var armedTimers: [EngineTimer] = []
        /// The engine let its disk go (`detachDisk`).
        public var diskDetached = false
        /// Reads for the peer this node answered with held data.
        public var heldReads = 0
        /// Blocks (resync replies, replicated writes) this node received held.
        public var heldReceives = 0
        /// Bytes of bitmap pages written to the meta-data.
        public var bitmapBytesWritten = 0
    }

    /// The two nodes.
    public private(set) var nodes: [Node]
    /// Frames in flight: `links[from][channel]`.
    private var links: [[Channel: [Frame]]] = [[.data: [], .meta: []], [.data: [], .meta: []]]
    /// Channels whose delivery is paused, per receiving node.
    public var pausedChannels: [Set<Channel>] = [[], []]
    /// True while both channels are up.
    public private(set) var connected = false
    /// Reads for the peer are answered with held data whose bytes are taken from the disk
    /// when the frame is sent (as a runtime that splices them does), not when read.
    public var holdsReadsForPeer = false
    /// Blocks that arrive (resync replies and replicated writes with data) are handed to the
    /// engine held, apart from their frame (as a runtime that splices them from the socket does).
    public var holdsReceivedBlocks = false
    /// A node that closed the connection: the frames it sent before are still delivered (an
    /// orderly close), then its peer sees the loss.
    private var closedBy: Int?
    private var random: SeededGenerator

    /// Two nodes with fresh meta-data (`create-md`) on disks of `diskSize` bytes.
    public init(diskSize: Int64, configuration: EngineConfiguration = EngineConfiguration(), seed: UInt64 = 1) throws {
        random = SeededGenerator(seed: seed)
        var nodes: [Node] = []
        for index in 0..<2 {
            let disk = MemoryBlockTarget(size: diskSize)
            let metadata = try MetadataDevice.internalMetadata(disk, name: "node\(index)")
            try metadata.create(force: true)
            nodes.append(try Self.attach(disk: disk, metadata: metadata, configuration: configuration, seed: seed &* 31 &+ UInt64(index)))
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

    /// Attaches a disk: reads the superblock, applies the activity log, reads the bitmap.
    static func attach(disk: MemoryBlockTarget, metadata: MetadataDevice, configuration: EngineConfiguration, seed: UInt64) throws -> Node {
        try metadata.applyActivityLog()
        let superblock = try metadata.readCheckedSuperblock()
        let dataSize = metadata.dataBytes(superblock)
        let bitmap = try metadata.readBitmap(superblock, dataBytes: dataSize)
        let engine = VolumeEngine(configuration: configuration, superblock: superblock, bitmap: bitmap, dataSize: dataSize, entropySeed: seed)
        return Node(engine: engine, disk: disk, metadata: metadata)
    }

    /// Writes data directly to a node's disk (data present before replication starts).
    public func preload(node: Int, offset: Int64, bytes: [UInt8]) throws {
        try nodes[node].disk.write(bytes, at: offset)
    }

    /// Connects the nodes (node 0 accepts the meta channel and holds RESOLVE_CONFLICTS).
    public mutating func connect() throws {
        guard !nodes[0].standAlone, !nodes[1].standAlone else { return }
        closedBy = nil
        links = [[.data: [], .meta: []], [.data: [], .meta: []]]
        connected = true
        for index in 0..<2 { try execute(index, nodes[index].engine.handle(.connectionEstablished(resolveConflicts: index == 0))) }
    }

    /// Breaks the link: frames in flight are lost, both engines see the loss.
    public mutating func disconnect() throws {
        guard connected else { return }
        connected = false
        closedBy = nil
        links = [[.data: [], .meta: []], [.data: [], .meta: []]]
        for index in 0..<2 { try execute(index, nodes[index].engine.handle(.connectionLost)) }
    }

    /// `node` closes the connection in order: what it already sent still reaches the peer,
    /// which sees the loss after it; frames towards `node` are dropped.
    private mutating func close(by node: Int, standAlone: Bool) throws {
        guard connected else { return }
        connected = false
        links[1 - node] = [.data: [], .meta: []]
        if !standAlone { try execute(node, nodes[node].engine.handle(.connectionLost)) }
        if links[node].values.allSatisfy(\.isEmpty) {
            links = [[.data: [], .meta: []], [.data: [], .meta: []]]
            try execute(1 - node, nodes[1 - node].engine.handle(.connectionLost))
        } else {
            closedBy = node
        }
    }

    /// `attach` of a Diskless Secondary, as the daemon does it: the link drops, a new engine
    /// reads the disk's meta-data, and the nodes connect again (a resync brings the disk up to date).
    public mutating func reattach(_ node: Int, seed: UInt64 = 99) throws {
        try disconnect()
        let configuration = nodes[node].engine.configuration
        nodes[node] = try Self.attach(disk: nodes[node].disk, metadata: nodes[node].metadata, configuration: configuration, seed: seed)
        _ = try admin(node) { $0.connect(discardMyData: false) }
        try connect()
    }

    /// `attach` of a Diskless Primary, as the daemon does it: a new engine reads the disk's
    /// meta-data and the running engine takes the disk over on its live connection. Returns
    /// the refusal, or nil.
    public mutating func attachInPlace(_ node: Int, seed: UInt64 = 99) throws -> VolumeEngine.AttachRefusal? {
        let fresh = try Self.attach(disk: nodes[node].disk, metadata: nodes[node].metadata, configuration: nodes[node].engine.configuration, seed: seed)
        switch nodes[node].engine.attachInPlace(fresh.engine) {
        case .success(let effects):
            nodes[node].diskDetached = false
            try execute(node, effects)
            return nil
        case .failure(let refusal):
            return refusal
        }
    }

    /// Submits an application request on a node.
    public mutating func request(_ node: Int, _ id: RequestID, _ request: ApplicationRequest) throws {
        try execute(node, nodes[node].engine.handle(.request(id, request)))
    }

    /// Runs an admin command's effects.
    public mutating func admin(_ node: Int, _ command: (inout VolumeEngine) -> Result<[EngineEffect], StateChangeError>) throws -> StateChangeError? {
        switch command(&nodes[node].engine) {
        case .success(let effects):
            try execute(node, effects)
            return nil
        case .failure(let error):
            return error
        }
    }

    /// The possible next steps.
    private func actions() -> [Action] {
        var actions: [Action] = []
        for index in 0..<2 {
            if !nodes[index].holdIO { for position in nodes[index].pendingIO.indices { actions.append(.completeIO(index, position)) } }
            for channel in [Channel.data, .meta] where !(links[index][channel] ?? []).isEmpty && !pausedChannels[1 - index].contains(channel)
                && (connected || closedBy == index) {
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
            let (id, io) = nodes[node].pendingIO.remove(at: position)
            let result = io.perform(on: nodes[node].disk)
            if holdsReadsForPeer, case .readForPeer(let offset, let length) = io, case .success = result {
                nodes[node].heldReads += 1
                let held = HeldData(ReadWhenTaken(disk: nodes[node].disk, offset: offset, length: length))
                try execute(node, nodes[node].engine.handle(.heldReadCompleted(id, held)))
            } else {
                try execute(node, nodes[node].engine.handle(.localIOCompleted(id, result)))
            }
        case .deliver(let from, let channel):
            let frame = links[from][channel]!.removeFirst()
            let data = FrameCodec.dataBytes(frame)
            if holdsReceivedBlocks, frame.type == .resyncReply || frame.type == .data, !data.isEmpty {
                nodes[1 - from].heldReceives += 1
                try execute(1 - from, nodes[1 - from].engine.handle(.heldFrame(frame.replacingData([]), HeldData(HeldBytesInMemory(data)))))
            } else {
                try execute(1 - from, nodes[1 - from].engine.handle(.frame(frame)))
            }
            if closedBy == from, links[from].values.allSatisfy(\.isEmpty) {
                // Everything the closing node sent has arrived: now its peer sees the end.
                closedBy = nil
                links = [[.data: [], .meta: []], [.data: [], .meta: []]]
                try execute(1 - from, nodes[1 - from].engine.handle(.connectionLost))
            }
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
                let effects = nodes[index].engine.handle(.resyncTick)
                if !effects.isEmpty { progressed = true }
                try execute(index, effects)
            }
            if !progressed || actions().isEmpty { return }
        }
    }

    private mutating func execute(_ node: Int, _ effects: [EngineEffect]) throws {
        for effect in effects {
            switch effect {
            case .send(let frame):
                nodes[node].sentFrames[frame.type, default: 0] += 1
                guard connected else { continue }
                let (headerBytes, payload) = FrameCodec.encode(frame)
                let decoded = try FrameCodec.decode(try FrameHeader(bytes: headerBytes), payload: payload)
                links[node][frame.type.channel, default: []].append(decoded)
            case .sendHeld(let frame, let held):
                try execute(node, [.send(frame.replacingData(held.storage.takeBytes()))])
            case .localIO(let id, let io):
                nodes[node].pendingIO.append((id, io))
            case .complete(let id, let result):
                nodes[node].completions.append((id, result))
            case .writeSuperblock(let superblock):
                try nodes[node].metadata.writeSuperblock(superblock)
            case .writeBitmap(let pages):
                try nodes[node].metadata.writeBitmapPages(pages, try nodes[node].metadata.readSuperblock())
                nodes[node].bitmapBytesWritten += pages.reduce(0) { $0 + $1.bytes.count }
            case .writeActivityLog(let transaction):
                try nodes[node].metadata.writeActivityLogTransaction(transaction, try nodes[node].metadata.readSuperblock())
            case .armTimer(let timer, _):
                nodes[node].armedTimers.append(timer)
            case .stateChanged(let state):
                nodes[node].states.append(state)
            case .closeConnection(let reason, let standAlone):
                nodes[node].log.append("close: \(reason)")
                if standAlone { nodes[node].standAlone = true }
                try close(by: node, standAlone: standAlone)
            case .log(let line):
                nodes[node].log.append(line)
            case .callHandler(let name):
                nodes[node].log.append("handler: \(name)")
            case .detachDisk(let reason):
                nodes[node].log.append("detach: \(reason)")
                nodes[node].diskDetached = true
            }
        }
    }

    /// The data area of a node's disk (what the application sees).
    public func data(_ node: Int) throws -> [UInt8] {
        try nodes[node].disk.read(count: Int(nodes[node].engine.size), at: 0)
    }

    /// Fires every armed timer of a node (virtual time jumps past them).
    public mutating func fireTimers(_ node: Int) throws {
        let timers = nodes[node].armedTimers
        nodes[node].armedTimers.removeAll()
        for timer in timers { try execute(node, nodes[node].engine.handle(.timer(timer))) }
    }

    /// Changes a node's engine directly (tests: configuration mismatches, fault setup).
    public mutating func modifyEngine(_ node: Int, _ body: (inout VolumeEngine) -> Void) { body(&nodes[node].engine) }

    /// Releases held I/O of a node.
    public mutating func setHoldIO(_ node: Int, _ hold: Bool) { nodes[node].holdIO = hold }
}

/// splitmix64: a small, fast, seedable generator for deterministic runs.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator that always produces the same sequence for `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
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
