import Foundation
import Logging
import Synchronization

extension ReplicationRuntime {
    /// What runs when the engine completes an application request: the data read (empty for
    /// other requests) or why it failed.
    public typealias Completion = @Sendable (Result<[UInt8], RequestError>) -> Void

    /// Submits an application request to volume `volume`; `completion` runs when the engine
    /// completes it. Never waits: callable from anywhere, Swift's cooperative pool included
    /// (a request the bounds hold back waits in the runtime, not in the caller). `notice`, if
    /// given, runs after the engine step that completed it (see
    /// ``submitWaitingForStep(_:volume:notice:)``).
    public func submit(_ request: ApplicationRequest, volume: UInt16 = 0, notice: DeliveryNotice? = nil, completion: @escaping Completion) {
        engineQueue.async { [self] in
            step { start(request, volume: volume, completion, notice: notice, batch: nil) }
        }
    }

    /// Submits requests that arrived together in one engine step, run on the caller's thread
    /// (no thread hand-off; the caller waits while the step runs — small reads and writes done
    /// inline, the rest started — so call it from a dedicated thread such as an NBD
    /// connection's reader, never from Swift's cooperative pool). While the bounds hold the
    /// requests back (the link's queue full, `max-io-depth` reached) the caller waits until
    /// they are in the engine: the back-pressure reaches whoever sends them (an NBD client
    /// sees its socket fill). Each completion runs when the engine completes its request;
    /// `notice`, if given, runs once after each engine step in which any of them completed, so
    /// that the caller can answer everything that completed together at once.
    public func submitWaitingForStep(_ requests: [(ApplicationRequest, Completion)], volume: UInt16 = 0, notice: DeliveryNotice?) {
        let batch = AdmissionBatch(count: requests.count)
        let notices = engineQueue.sync { [self] in
            stepKeepingNotices {
                for (request, completion) in requests { start(request, volume: volume, completion, notice: notice, batch: batch) }
            }
        }
        for notice in notices { notice.notify() }
        batch.waitUntilAdmitted()
    }

    /// Hands one application request to its volume's engine, or holds it back while the
    /// bounds are reached (on the engine queue, inside a step).
    func start(_ request: ApplicationRequest, volume number: UInt16, _ completion: @escaping Completion, notice: DeliveryNotice?,
               batch: AdmissionBatch?) {
        guard let volume = volume(number) else {
            completion(.failure(.invalidRange(offset: 0, length: 0, size: 0)))
            batch?.admitted()
            return
        }
        let held = HeldRequest(volume: volume, request: request, completion: completion, notice: notice, batch: batch)
        guard heldRequests.isEmpty, admits else {
            heldRequests.append(held)
            heldCount.store(heldRequests.count, ordering: .relaxed)
            return
        }
        enter(held)
    }

    /// True while the bounds let another request into the engine: fewer than `max-io-depth`
    /// in it, and the link's queue — with what this step is about to add to it — below
    /// `max-buffers` (so the queue exceeds its bound by one request at most).
    private var admits: Bool {
        applicationInFlight < limits.ioDepth && (link?.queuedBytes ?? 0) + pendingSendBytes < limits.queueBytes
    }

    /// True while requests wait for the bounds (`congested` in status).
    var isCongested: Bool { !heldRequests.isEmpty }

    private func enter(_ held: HeldRequest) {
        let id = nextRequestID
        nextRequestID += 1
        applicationInFlight += 1
        held.volume.completions[id] = PendingRequest(completion: held.completion, notice: held.notice)
        held.batch?.admitted()
        held.volume.driver.handle(.request(id, held.request))
    }

    /// Lets held requests into the engine while the bounds allow (after a completion, a
    /// drained link, a lost link). Returns true when it let any in.
    func admitHeldRequests() -> Bool {
        guard !heldRequests.isEmpty, admits else { return false }
        var admitted = 0
        while admitted < heldRequests.count, admits {
            enter(heldRequests[admitted])
            admitted += 1
        }
        heldRequests.removeFirst(admitted)
        heldCount.store(heldRequests.count, ordering: .relaxed)
        return admitted > 0
    }

    /// A request's completion is about to run (from its volume's host).
    func applicationRequestEnded(_ notice: DeliveryNotice?) {
        applicationInFlight -= 1
        noteDelivered(notice)
    }

    /// Completes every held request with `error` (the runtime stops).
    func failHeldRequests(_ error: RequestError) {
        let held = heldRequests
        heldRequests.removeAll()
        heldCount.store(0, ordering: .relaxed)
        for request in held {
            request.batch?.admitted()
            request.completion(.failure(error))
        }
    }
}

/// The requests of one ``ReplicationRuntime/submitWaitingForStep(_:volume:notice:)`` call,
/// which waits until the bounds let all of them into the engine.
final class AdmissionBatch: @unchecked Sendable {
    private let condition = NSCondition()
    private var waiting: Int

    init(count: Int) { waiting = count }

    func admitted() {
        condition.withLock {
            waiting -= 1
            if waiting <= 0 { condition.broadcast() }
        }
    }

    func waitUntilAdmitted() {
        condition.withLock {
            while waiting > 0 { condition.wait() }
        }
    }
}

extension ReplicationRuntime {
    /// Which parts of `offset..<offset+length` of volume `number` are holes (read back as
    /// zeroes without taking space) and which hold data, as its disk knows them — reported only
    /// while this node's disk is UpToDate, where every read is served from it; otherwise (a
    /// Diskless or resyncing node, whose reads may come from the peer) the whole range is
    /// data, which is always a safe answer. Waits for the engine queue (call it from a thread
    /// that may wait, such as an NBD connection's reader).
    public func allocation(volume number: UInt16 = 0, offset: Int64, length: Int64) throws(BlockIOError) -> [AllocationExtent] {
        let disk: (any BlockTarget)? = engineQueue.sync {
            guard let volume = volume(number) else { return nil }
            return volume.driver.inspect { $0.state.disk } == .upToDate ? volume.disk : nil
        }
        guard let disk else { return length > 0 ? [AllocationExtent(length: length, isHole: false)] : [] }
        return try disk.allocation(at: offset, length: length)
    }
}
