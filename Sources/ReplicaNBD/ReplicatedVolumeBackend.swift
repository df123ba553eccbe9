import Foundation
import ReplicaCore

/// A ``ReplicationRuntime`` behind an NBD export: requests go to the engine without blocking
/// a thread (many in flight), split into the engine's 1 MiB pieces; FLUSH and FUA complete
/// when the data is durable as the resource's protocol defines it (C: on both disks).
public final class ReplicatedVolumeBackend: NBDBackend, @unchecked Sendable {
    private let runtime: ReplicationRuntime
    public let readOnly = false
    public var size: Int64 { runtime.snapshot.size }

    /// A backend over `runtime`.
    public init(runtime: ReplicationRuntime) { self.runtime = runtime }

    public func perform(_ request: NBDBackendRequest, completion: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void) {
        let piece = Int64(FrameLimits.maximumRequestSize)
        switch request {
        case .read(let offset, let length):
            let ranges = Self.split(offset, Int64(length), piece)
            let gather = Gather(pieces: ranges.count, reading: length) { completion($0) }
            for (index, range) in ranges.enumerated() {
                runtime.submit(.read(offset: range.lowerBound, length: range.count)) { result in
                    gather.finished(index, at: Int(range.lowerBound - offset), result)
                }
            }
        case .write(let offset, let data, let fua):
            let ranges = Self.split(offset, Int64(data.count), piece)
            submitAll(ranges.map { range in
                .write(offset: range.lowerBound, data: Array(data[Int(range.lowerBound - offset)..<Int(range.upperBound - offset)]))
            }, thenFlush: fua, completion)
        case .flush:
            submitAll([.flush], thenFlush: false, completion)
        case .trim(let offset, let length), .writeZeroes(let offset, let length, fua: false):
            submitAll(Self.split(offset, length, piece).map { .discard(offset: $0.lowerBound, length: Int64($0.count)) }, thenFlush: false, completion)
        case .writeZeroes(let offset, let length, fua: true):
            submitAll(Self.split(offset, length, piece).map { .discard(offset: $0.lowerBound, length: Int64($0.count)) }, thenFlush: true, completion)
        }
    }

    /// Submits `requests` together; when all are done (and, with `thenFlush`, a flush after
    /// them), completes with the first error or success.
    private func submitAll(_ requests: [ApplicationRequest], thenFlush: Bool, _ completion: @escaping @Sendable (Result<[UInt8], NBDError>) -> Void) {
        let runtime = self.runtime
        let gather = Gather(pieces: requests.count, reading: 0) { result in
            guard thenFlush, case .success = result else { return completion(result) }
            runtime.submit(.flush) { completion($0.mapError(Self.nbdError).map { _ in [] }) }
        }
        for (index, request) in requests.enumerated() {
            runtime.submit(request) { gather.finished(index, at: 0, $0) }
        }
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
            data = reading > 0 ? [UInt8](repeating: 0, count: reading) : []
            self.done = done
        }

        func finished(_ index: Int, at position: Int, _ result: Result<[UInt8], RequestError>) {
            let outcome: Result<[UInt8], NBDError>? = lock.withLock {
                switch result {
                case .success(let bytes) where !bytes.isEmpty:
                    data.replaceSubrange(position..<(position + bytes.count), with: bytes)
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
