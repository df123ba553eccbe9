import Foundation
import ReplicaCore

/// A ``ReplicationRuntime`` behind an NBD export: requests go to the engine without blocking
/// a thread (many in flight, those a client sent together in one engine step), split into the
/// engine's 1 MiB pieces; FLUSH and FUA complete when the data is durable as the resource's
/// protocol defines it (C: on both disks).
public final class ReplicatedVolumeBackend: NBDBackend, @unchecked Sendable {
    private let runtime: ReplicationRuntime
    /// The volume served.
    public let volume: UInt16
    public let readOnly = false
    public var size: Int64 { runtime.snapshot(volume: volume)?.size ?? 0 }

    /// A backend over volume `volume` of `runtime`.
    public init(runtime: ReplicationRuntime, volume: UInt16 = 0) {
        self.runtime = runtime
        self.volume = volume
    }

    /// Holes and data as this node's UpToDate disk knows them; all data otherwise
    /// (``ReplicationRuntime/allocation(volume:offset:length:)``).
    public func allocation(offset: Int64, length: Int64) -> Result<[AllocationExtent], NBDError> {
        do {
            return .success(try runtime.allocation(volume: volume, offset: offset, length: length))
        } catch {
            return .failure(NBDError(NBDProtocol.Errno.eio, "\(error)"))
        }
    }

    /// Never waits (each piece submitted asynchronously): callable from any thread.
    public func perform(_ request: NBDBackendRequest, completion: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void) {
        let notice = DeliveryNotice {}
        for (piece, pieceCompletion) in pieces(of: request, notice: notice, completion) {
            runtime.submit(piece, volume: volume, completion: pieceCompletion)
        }
    }

    /// Runs the engine step for the batch on the calling thread (an NBD connection's reader).

    public func perform(batch requests: [NBDBackendRequest], completion: @escaping @Sendable (Int, Result<[UInt8], NBDError>) -> Void,
                        delivered: @escaping @Sendable () -> Void) {
        let notice = DeliveryNotice(delivered)
        var submissions: [(ApplicationRequest, ReplicationRuntime.Completion)] = []
        for (index, request) in requests.enumerated() {
            submissions += pieces(of: request, notice: notice) { completion(index, $0) }
        }
        runtime.submitWaitingForStep(submissions, volume: volume, notice: notice)
    }

    /// The engine requests that make up `request`, each with the completion that gathers it.
    private func pieces(of request: NBDBackendRequest, notice: DeliveryNotice,
                        _ completion: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void) -> [(ApplicationRequest, ReplicationRuntime.Completion)] {
        let piece = Int64(FrameLimits.maximumRequestSize)
        switch request {
        case .read(let offset, let length):
            let ranges = Self.split(offset, Int64(length), piece)
            let gather = Gather(pieces: ranges.count, reading: length, done: completion)
            return ranges.enumerated().map { index, range in
                (.read(offset: range.lowerBound, length: range.count), { gather.finished(index, at: Int(range.lowerBound - offset), $0) })
            }
        case .write(let offset, let data, let fua):
            let ranges = Self.split(offset, Int64(data.count), piece)
            let writes: [ApplicationRequest] = ranges.count == 1 ? [.write(offset: offset, data: data)] : ranges.map { range in
                .write(offset: range.lowerBound, data: Array(data[Int(range.lowerBound - offset)..<Int(range.upperBound - offset)]))
            }
            return gathered(writes, thenFlush: fua, notice: notice, completion)
        case .flush:
            return gathered([.flush], thenFlush: false, notice: notice, completion)
        case .trim(let offset, let length), .writeZeroes(let offset, let length, fua: false):
            return gathered(Self.split(offset, length, piece).map { .discard(offset: $0.lowerBound, length: Int64($0.count)) },
                            thenFlush: false, notice: notice, completion)
        case .writeZeroes(let offset, let length, fua: true):
            return gathered(Self.split(offset, length, piece).map { .discard(offset: $0.lowerBound, length: Int64($0.count)) },
                            thenFlush: true, notice: notice, completion)
        }
    }

    /// `requests` with completions that, when all are done (and, with `thenFlush`, a flush
    /// after them), complete with the first error or success.
    private func gathered(_ requests: [ApplicationRequest], thenFlush: Bool, notice: DeliveryNotice,
                          _ completion: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void) -> [(ApplicationRequest, ReplicationRuntime.Completion)] {
        let runtime = self.runtime
        let volume = self.volume
        let gather = Gather(pieces: requests.count, reading: 0) { result in
            guard thenFlush, case .success = result else { return completion(result) }
            // Called inside an engine step: the flush goes in a step of its own.
            runtime.submit(.flush, volume: volume, notice: notice) { completion($0.mapError(Self.nbdError).map { _ in [] }) }
        }
        return requests.enumerated().map { index, request in (request, { gather.finished(index, at: 0, $0) }) }
    }

    static func split(_ offset: Int64, _ length: Int64, _ piece: Int64) -> [Range<Int64>] {
        guard length > 0 else { return [offset..<offset] }
        return stride(from: offset, to: offset + length, by: Int(piece)).map { $0..<min($0 + piece, offset + length) }
    }

    static func nbdError(_ error: RequestError) -> NBDError {
        switch error {
        case .notPrimary: NBDError(NBDProtocol.Errno.eperm, error.description)
        case .invalidRange: NBDError(NBDProtocol.Errno.einval, error.description)
        case .aborted: NBDError(NBDProtocol.Errno.eshutdown, error.description)
        case .noUpToDateData, .ioError: NBDError(NBDProtocol.Errno.eio, error.description)
        }
    }

    /// Collects the pieces of one NBD request.
    private final class Gather: @unchecked Sendable {
        private let lock = NSLock()
        private var left: Int
        private var data: [UInt8]
        private var failure: NBDError?
        private let done: @Sendable (Result<[UInt8], NBDError>) -> Void

        init(pieces: Int, reading: Int, done: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void) {
            left = pieces
            data = reading > 0 && pieces > 1 ? [UInt8](repeating: 0, count: reading) : []
            self.done = done
        }

        func finished(_ index: Int, at position: Int, _ result: Result<[UInt8], RequestError>) {
            let outcome: Result<[UInt8], NBDError>? = lock.withLock {
                switch result {
                case .success(let bytes) where !bytes.isEmpty:
                    // One piece: its bytes are the reply as they are (no copy).
                    if data.isEmpty { data = bytes } else { data.replaceSubrange(position..<(position + bytes.count), with: bytes) }
                case .success: break
                case .failure(let error): if failure == nil { failure = ReplicatedVolumeBackend.nbdError(error) }
                }
                left -= 1
                guard left == 0 else { return nil }
                if let failure { return .failure(failure) }
                return .success(data)
            }
            if let outcome { done(outcome) }
        }
    }
}
