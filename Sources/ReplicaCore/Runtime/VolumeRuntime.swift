import Foundation
import Logging

/// What a volume of a resource starts with: its engine (attached, or without a disk), disk and
/// meta-data, and the resource's handlers as they apply to it.
public struct VolumeSetup: Sendable {
    /// The volume number (`volume N`; 0 for the implicit volume).
    public var number: UInt16
    /// The engine, ready to run.
    public var engine: VolumeEngine
    /// The backing disk (nil: `disk none`).
    public var disk: (any BlockTarget)?
    /// Its meta-data (nil: `disk none`).
    public var metadata: MetadataDevice?
    /// `md-flushes`.
    public var metadataFlushes: Bool
    /// The handlers, with this volume's environment.
    public var handlers: HandlerRunner

    /// A volume on an attached disk.
    public init(number: UInt16, attachment: VolumeAttachment, handlers: HandlerRunner = .none) {
        self.number = number
        engine = attachment.engine
        disk = attachment.disk
        metadata = attachment.metadata
        metadataFlushes = attachment.metadataFlushes
        self.handlers = handlers
    }

    /// A volume without a disk of its own (`disk none`), served by its peer.
    public init(number: UInt16, disklessEngine engine: VolumeEngine, handlers: HandlerRunner = .none) {
        self.number = number
        self.engine = engine
        disk = nil
        metadata = nil
        metadataFlushes = true
        self.handlers = handlers
    }
}

/// One volume of a ``ReplicationRuntime``: the ``EngineHost`` that runs its engine with real
/// parts — its disk (small I/O inline in the step, large I/O and slow flushes on the volume's
/// I/O queue), its timers, its application requests — while frames and connection changes go
/// through the resource's runtime, which owns the link. Used on the runtime's engine queue only.
final class VolumeRuntime: EngineHost, @unchecked Sendable {
    /// The volume number frames carry.
    let number: UInt16
    /// The resource's runtime, which owns this object. Set once, right after both exist; used
    /// inside engine steps (the runtime is alive then) and captured strongly by work that
    /// outlives a step.
    unowned(unsafe) var resource: ReplicationRuntime!
    /// The engine's driver (``install(_:)`` right after init: it needs this host), read and
    /// changed in place — through a force-unwrapped optional each read copied the whole
    /// driver, engine included (a retain and release of every buffer it holds, every step).
    var driver: EngineDriver {
        _read { yield driverStorage! }
        _modify { yield &driverStorage! }
    }
    private var driverStorage: EngineDriver?

    /// Sets the driver (once, right after init).
    func install(_ driver: EngineDriver) { driverStorage = driver }
    /// The backing disk; nil for `disk none`. Replaced by an attach in place.
    private(set) var disk: (any BlockTarget)?
    let ioQueue: DispatchQueue
    let handlers: HandlerRunner
    let logger: Logger
    /// Local I/O this step does itself (see ``ReplicationRuntime``'s step).
    var inlineIO: [(LocalIOID, LocalIO, (any HeldDataStorage)?)] = []
    /// Application requests in the engine, by id.
    var completions: [RequestID: PendingRequest] = [:]
    /// The last failure of this volume's disk or meta-data, for status.
    var lastError: String?
    /// How long the last flush of the disk took, in nanoseconds (nil before the first).
    private var lastFlushNanoseconds: UInt64?
    /// A flush runs inline while the last one took at most this long (a disk whose flushes
    /// are cheap: a write cache with power-loss protection, tmpfs); a slower one sends the
    /// next to the I/O queue, so a step waits for at most one slow flush.
    static let inlineFlushLimitNanoseconds: UInt64 = 200_000

    init(setup: VolumeSetup, name: String, logger: Logger) {
        number = setup.number
        disk = setup.disk
        handlers = setup.handlers
        self.logger = logger
        ioQueue = DispatchQueue(label: "replica.io.\(name).\(setup.number)")
    }

    /// Takes the disk of an attach in place.
    func replaceDisk(_ disk: any BlockTarget) { self.disk = disk }

    // MARK: - EngineHost

    func send(_ frame: Frame, held: (any HeldDataStorage)?) {
        resource.queueFrame(OutgoingFrame(frame, volume: number, held: held))
    }

    func startLocalIO(_ id: LocalIOID, _ io: LocalIO, held: (any HeldDataStorage)?) {
        if runsInline(io) {
            inlineIO.append((id, io, held))
            return
        }
        let disk = self.disk
        // The runtime is kept alive until the completion was handed over (this object only
        // points back to it).
        let runtime: ReplicationRuntime = resource
        ioQueue.async { [self] in
            let (completion, flushTime) = Self.perform(io, held: held, on: disk)
            runtime.afterIO { [self] in
                if let flushTime { lastFlushNanoseconds = flushTime }
                noteFailure(completion)
                driver.completed(id, completion)
            }
        }
    }

    func complete(_ id: RequestID, _ result: Result<[UInt8], RequestError>) {
        guard let pending = completions.removeValue(forKey: id) else { return }
        resource.applicationRequestEnded(pending.notice)
        pending.completion(result)
    }

    func armTimer(_ timer: EngineTimer, milliseconds: Int) {
        // Not `weak`: a weak reference gives the object a side table, and every retain and
        // release of it after that takes the slow path (measured with callgrind: about 40 per
        // write). The body runs only while the runtime is alive (``ReplicationRuntime/afterDelay``),
        // and the runtime owns its volumes for all its life.
        resource.afterDelay(milliseconds: milliseconds) { [unowned(unsafe) self] in self.driver.handle(.timer(timer)) }
    }

    func closeConnection(reason: String, standAlone: Bool) -> Bool {
        resource.closeConnection(from: self, reason: reason, standAlone: standAlone)
    }

    func stateChanged(_ state: ResourceState) {
        logger.info("\(number == 0 ? "" : "volume \(number): ")\(state)")
    }

    func log(_ line: String) { logger.info("\(line)") }

    func callHandler(_ name: String) { handlers.call(name, logger: logger) }

    func detachDisk(reason: String) {
        // The engine asks for no disk work from here on; I/O already queued on the serial I/O
        // queue still completes. The device is closed with the runtime.
        logger.warning("detached from the backing device: \(reason)")
        lastError = reason
    }

    func metadataWriteFailed(_ write: MetadataWrite, _ error: BlockIOError) {
        logger.error("meta-data write failed (\(write)): \(error)")
        lastError = "meta-data write failed (\(write)): \(error)"
    }

    // MARK: - Local I/O

    /// Small reads and writes run inline, in the step: the engine only asks for I/O that may
    /// run alongside everything else in flight, and two thread hand-offs cost more than a
    /// small `pread`/`pwrite` into the page cache. While connected, writes up to 1 MiB run
    /// inline too: the step has sent the frame first, so the local write overlaps the peer's
    /// (StandAlone, the I/O queue lets the reader take the next request meanwhile: faster
    /// alone, slower when connected, measured with fio at 1 MiB QD 8). Flushes run inline
    /// while they are fast (a peer flushes at every barrier, and the writes after the barrier
    /// wait for it). Large transfers, slow flushes and discards go to the I/O queue so that
    /// the engine keeps serving the network meanwhile. So do blocks received held
    /// (``SplicedReceive``: large resync blocks and replicated writes): the receive thread
    /// then only splices them into pipes, without a copy, and takes the next while the I/O
    /// thread copies this one into the disk — the two halves of a receiver's work on two
    /// cores (docs/PERFORMANCE.md: a full sync +15–25 % against writing them inline).
    private func runsInline(_ io: LocalIO) -> Bool {
        switch io {
        case .read(_, let length), .readForPeer(_, let length): length <= 64 << 10
        case .write: io.range.count <= 64 << 10 || (resource.hasLink && io.range.count <= 1 << 20)
        case .writeHeld: false
        case .flush: lastFlushNanoseconds.map { $0 <= Self.inlineFlushLimitNanoseconds } ?? false
        case .discard: false
        }
    }

    /// Does this step's inline I/O in order, each completion handed to the engine as it is
    /// done (it may ask for more, which the next round does).
    func performInlineIO() {
        let batch = inlineIO
        inlineIO.removeAll(keepingCapacity: true)
        for (id, io, held) in batch {
            let (completion, flushTime) = Self.perform(io, held: held, on: disk)
            if let flushTime { lastFlushNanoseconds = flushTime }
            noteFailure(completion)
            driver.completed(id, completion)
        }
    }

    /// Performs `io` on `disk`; a flush's duration is measured.
    private static func perform(_ io: LocalIO, held: (any HeldDataStorage)?, on disk: (any BlockTarget)?) -> (LocalIOCompletion, flushNanoseconds: UInt64?) {
        guard let disk else {
            // (An engine without a disk asks for no disk work; were it to, it fails.)
            return (.result(.failure(BlockIOError(operation: io.operation, offset: io.range.lowerBound, length: Int64(io.range.count),
                                                  errno: 19, detail: "the volume has no disk (disk none)"))), nil)
        }
        guard case .flush = io else { return (io.complete(on: disk, held: held), nil) }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = io.perform(on: disk)
        return (.result(result), DispatchTime.now().uptimeNanoseconds - start)
    }

    private func noteFailure(_ completion: LocalIOCompletion) {
        if case .result(.failure(let error)) = completion { lastError = "\(error)" }
    }
}

/// An application request the engine has not completed yet.
struct PendingRequest {
    var completion: ReplicationRuntime.Completion
    var notice: DeliveryNotice?
}
