import Foundation

/// A replicated volume embedded in a Swift program: a ``BlockTarget`` whose writes are
/// mirrored to the peer as the resource's protocol says (A, B or C) before they complete.
///
/// ```swift
/// let configuration = try ConfigBuilder.load(path: "/etc/replica/replica.conf")
/// let volume = try ReplicatedVolume(configuration: configuration, resource: "r0", node: "alpha",
///                                   transport: try TCPTransport.forResource(configuration, "r0", node: "alpha"))
/// try volume.up()
/// try volume.promote(force: true)          // first time only: this node's data is the truth
/// try volume.write(Array(repeating: 0xAB, count: 4096), at: 0)
/// try volume.flush()                       // protocol C: durable on both disks
/// ```
public final class ReplicatedVolume: BlockTarget, @unchecked Sendable {
    /// The runtime executing the resource's engines.
    public let runtime: ReplicationRuntime
    /// `RES/VOL`.
    public let label: String
    /// The logical block size of the backing disk.
    public let logicalBlockSize: Int
    /// The volume number this object reads and writes.
    public let volumeNumber: UInt16

    /// Attaches every volume of `resource` on `node` and prepares the transport (not yet
    /// connected); this object serves the first volume (the others replicate as well).
    public init(configuration: Configuration, resource name: String, node: String, transport: any Transport) throws {
        let attachment = try ResourceAttachment.attach(configuration, resource: name, node: node)
        runtime = ReplicationRuntime(volumes: attachment.volumes, transport: transport, limits: attachment.limits, name: "\(name)-\(node)")
        label = attachment.resolved[0].label
        volumeNumber = attachment.volumes[0].number
        logicalBlockSize = attachment.volumes[0].disk?.logicalBlockSize ?? 512
    }

    /// `attach` of this volume while it is a Diskless Primary: its disk (as `configuration`
    /// names it) is opened and taken into use on the live connection, and the peer resyncs it
    /// while the volume goes on serving (``VolumeEngine/attachInPlace(_:)``). Throws the
    /// refusal, with nothing changed (the disk's superblock is written back as it was found).
    public func attachInPlace(configuration: Configuration, resource name: String, node: String) throws {
        guard let resource = configuration.resource(named: name) else {
            throw ConfigError(SourceLocation(file: configuration.file, line: 1, column: 1), "no resource named \(name)")
        }
        let resolver = NodeResolver(nodeName: node)
        guard let volume = try resolver.volumes(of: resource, in: configuration).first(where: { UInt16($0.number) == volumeNumber }) else {
            throw ConfigError(resource.location, "resource \(name) has no volume \(volumeNumber) any more")
        }
        let attachment = try VolumeAttachment.attach(volume, net: resolver.netOptions(of: resource, in: configuration),
                                                     entropySeed: UInt64.random(in: 0...UInt64.max))
        if case .failure(let refusal) = runtime.attachInPlace(attachment, volume: volumeNumber) {
            try attachment.abandon()
            throw refusal
        }
    }

    /// The size the volume exposes (agreed with the peer).
    public var size: Int64 { runtime.snapshot(volume: volumeNumber)?.size ?? 0 }

    /// The current state.
    public var state: ResourceState { runtime.snapshot(volume: volumeNumber)?.state ?? runtime.snapshot.state }

    /// Starts connecting to the peer (`up` = attach, done at init, + `connect`).
    public func up() throws { try runtime.connect() }

    /// Stops replication and releases the transport, the disks' meta-data marked clean when
    /// everything in flight finished within `timeout` seconds.
    @discardableResult
    public func down(timeout: Double = 10) -> ReplicationRuntime.ShutdownReport { runtime.shutdown(timeout: timeout) }

    /// `primary [--force]`.
    public func promote(force: Bool = false) throws {
        try runtime.admin(undo: { $0.demote() }) { $0.promote(force: force) }.get()
    }

    /// `secondary`.
    public func demote() throws {
        try runtime.admin(undo: { $0.promote(force: false) }) { $0.demote() }.get()
    }

    /// Waits until connected (and the handshake is done), up to `timeout` seconds.
    public func waitForConnection(timeout: Double) -> Bool {
        runtime.wait(timeout: timeout) { $0.state.connection >= .connected }
    }

    /// Waits until no resync is running and both disks are UpToDate.
    public func waitForSync(timeout: Double) -> Bool {
        runtime.wait(timeout: timeout) { $0.state.connection == .connected && $0.state.disk == .upToDate && $0.state.peerDisk == .upToDate }
    }

    private func perform(_ request: ApplicationRequest) -> Result<[UInt8], RequestError> {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        runtime.submit(request, volume: volumeNumber) { result in
            box.set(result)
            done.signal()
        }
        done.wait()
        return box.get()
    }

    private func check(_ result: Result<[UInt8], RequestError>, _ operation: BlockIOError.Operation, _ offset: Int64, _ length: Int64) throws(BlockIOError) -> [UInt8] {
        switch result {
        case .success(let data): return data
        case .failure(.ioError(let error)): throw error
        case .failure(let error):
            let code: Int32 = error == .notPrimary ? 30 : error == .noUpToDateData ? 5 : 22  // EROFS, EIO, EINVAL
            throw BlockIOError(operation: operation, offset: offset, length: length, errno: code, detail: "\(label): \(error)")
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        let data = try check(perform(.read(offset: offset, length: buffer.count)), .read, offset, Int64(buffer.count))
        data.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        _ = try check(perform(.write(offset: offset, data: Array(buffer))), .write, offset, Int64(buffer.count))
    }

    public func flush() throws(BlockIOError) {
        _ = try check(perform(.flush), .flush, 0, 0)
    }

    public func discard(at offset: Int64, length: Int64) throws(BlockIOError) {
        _ = try check(perform(.discard(offset: offset, length: length)), .discard, offset, length)
    }

    public func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError) {
        try discard(at: offset, length: length)
    }

    /// Holes and data as this node's disk knows them while it is UpToDate; all data otherwise
    /// (``ReplicationRuntime/allocation(volume:offset:length:)``).
    public func allocation(at offset: Int64, length: Int64) throws(BlockIOError) -> [AllocationExtent] {
        try checkRange(.allocation, offset: offset, length: length)
        return try runtime.allocation(volume: volumeNumber, offset: offset, length: length)
    }
}

/// Carries a completion result from the engine's queue to the waiting caller.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<[UInt8], RequestError> = .failure(.aborted)

    func set(_ value: Result<[UInt8], RequestError>) { lock.withLock { result = value } }
    func get() -> Result<[UInt8], RequestError> { lock.withLock { result } }
}
