import Dispatch
import ReplicaCore

/// What an NBD export asks of the storage behind it. Requests complete through their
/// callback, in any order and from any thread, so that many can be in flight.
public protocol NBDBackend: Sendable {
    /// Size in bytes.
    var size: Int64 { get }
    /// Refuse writes (EPERM) and advertise READ_ONLY.
    var readOnly: Bool { get }
    /// Performs `request`; `completion` gets the data read (empty for other requests) or an
    /// NBD error number.
    func perform(_ request: NBDBackendRequest, completion: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void)
    /// Performs requests a client sent together. `completion(index, result)` runs once for
    /// each, in any order, from any thread; `delivered` runs after one or more completions that
    /// came together (and eventually after every completion): the export holds replies until
    /// then and sends them in one write.
    func perform(batch requests: [NBDBackendRequest], completion: @escaping @Sendable (Int, Result<[UInt8], NBDError>) -> Void,
                 delivered: @escaping @Sendable () -> Void)
    /// Holes and data of `offset..<offset+length` (in range), for BLOCK_STATUS's
    /// `base:allocation`; may wait (it runs on the connection's reader thread).
    func allocation(offset: Int64, length: Int64) -> Result<[AllocationExtent], NBDError>
}

extension NBDBackend {
    /// All data: a backend that cannot tell holes apart (always a safe answer).
    public func allocation(offset: Int64, length: Int64) -> Result<[AllocationExtent], NBDError> {
        .success([AllocationExtent(length: length, isHole: false)])
    }

    /// Backends without batches perform the requests one by one, each reply sent as it completes.
    public func perform(batch requests: [NBDBackendRequest], completion: @escaping @Sendable (Int, Result<[UInt8], NBDError>) -> Void,
                        delivered: @escaping @Sendable () -> Void) {
        for (index, request) in requests.enumerated() {
            perform(request) { result in
                completion(index, result)
                delivered()
            }
        }
    }
}

/// A request an export passes to its backend (validated: in range, aligned, bounded).
public enum NBDBackendRequest: Sendable, Equatable {
    /// Read `length` bytes at `offset`.
    case read(offset: Int64, length: Int)
    /// Write; with `fua`, complete only when durable.
    case write(offset: Int64, data: [UInt8], fua: Bool)
    /// Make every completed write durable.
    case flush
    /// The range is unused (reads back as zeroes here).
    case trim(offset: Int64, length: Int64)
    /// The range reads back as zeroes; with `fua`, durable.
    case writeZeroes(offset: Int64, length: Int64, fua: Bool)
}

/// An NBD error number for a reply, with the reason for the log.
public struct NBDError: Error, Equatable, Sendable {
    /// The error number sent to the client.
    public var code: UInt32
    /// What went wrong.
    public var message: String
    /// An error with `code` and `message`.
    public init(_ code: UInt32, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Any ``BlockTarget`` behind an NBD export: requests run on a small pool of threads
/// (blocking calls, never on Swift's cooperative pool), at most `parallelism` at once.
public final class BlockTargetBackend: NBDBackend, @unchecked Sendable {
    private let target: any BlockTarget
    private let queue: DispatchQueue
    private let slots: DispatchSemaphore
    public let readOnly: Bool
    public var size: Int64 { target.size }

    /// A backend over `target`.
    public init(_ target: any BlockTarget, readOnly: Bool = false, parallelism: Int = 8) {
        self.target = target
        self.readOnly = readOnly
        queue = DispatchQueue(label: "replica.nbd.blocktarget", attributes: .concurrent)
        slots = DispatchSemaphore(value: parallelism)
    }

    /// What the target reports (``BlockTarget/allocation(at:length:)``).
    public func allocation(offset: Int64, length: Int64) -> Result<[AllocationExtent], NBDError> {
        do {
            return .success(try target.allocation(at: offset, length: length))
        } catch {
            return .failure(NBDError(NBDProtocol.Errno.eio, "\(error)"))
        }
    }

    public func perform(_ request: NBDBackendRequest, completion: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void) {
        let target = self.target
        let slots = self.slots
        queue.async {
            slots.wait()
            defer { slots.signal() }
            do {
                switch request {
                case .read(let offset, let length):
                    completion(.success(try target.read(count: length, at: offset)))
                    return
                case .write(let offset, let data, let fua):
                    try target.write(data, at: offset)
                    if fua { try target.flush() }
                case .flush:
                    try target.flush()
                case .trim(let offset, let length):
                    try target.discard(at: offset, length: length)
                case .writeZeroes(let offset, let length, let fua):
                    try target.writeZeroes(at: offset, length: length)
                    if fua { try target.flush() }
                }
                completion(.success([]))
            } catch {
                completion(.failure(NBDError(NBDProtocol.Errno.eio, "\(error)")))
            }
        }
    }
}
