import Foundation
import ReplicaCore

/// The transmission phase of one client: requests read in order on the connection's thread
/// (those that arrived together passed to the backend together), each answered as soon as it
/// completes (out of order; replies that complete together leave in one write). A malformed
/// or oversized request ends this connection only.
final class NBDTransmission: @unchecked Sendable {
    private let socket: NBDSocket
    private let backend: any NBDBackend
    private let structuredReplies: Bool
    /// `base:allocation` was negotiated: BLOCK_STATUS is answered.
    private let allocationContext: Bool
    private let inFlight = NSCondition()
    private var pending = 0
    /// Replies encoded and not sent yet (see ``flushReplies()``).
    private let outbox = NBDReplyOutbox()

    /// At most this many requests go to the backend at once.
    static let largestBatch = 64
    /// Requests in flight at most (``NBDLimits/requestsPerClient``): no more is read meanwhile.
    private let maximumInFlight: Int

    init(socket: NBDSocket, backend: any NBDBackend, negotiated: NBDNegotiated, maximumInFlight: Int = 16) {
        self.socket = socket
        self.backend = backend
        structuredReplies = negotiated.structuredReplies
        allocationContext = negotiated.allocationContext && negotiated.structuredReplies
        self.maximumInFlight = max(1, maximumInFlight)
    }

    /// Serves requests until the client disconnects (DISC or EOF) or breaks the protocol;
    /// returns why, after every request in flight was answered.
    func run() -> String {
        var batch = Batch()
        let reason = serve(&batch)
        submit(&batch)
        inFlight.lock()
        while pending > 0 { inFlight.wait() }
        inFlight.unlock()
        outbox.sendAll(to: socket)
        return reason
    }

    /// Requests read and not yet passed to the backend.
    private struct Batch {
        var headers: [NBDRequestHeader] = []
        var requests: [NBDBackendRequest] = []
    }

    private func serve(_ batch: inout Batch) -> String {
        let reader = NBDRequestReader(socket: socket)
        while true {
            // What arrived together goes to the backend before this thread waits for more.
            if reader.buffered < NBDRequestHeader.size || batch.requests.count >= Self.largestBatch { submit(&batch) }
            // At the bound, nothing more is read until a request completes.
            if batch.requests.count + inFlightCount >= maximumInFlight {
                submit(&batch)
                waitBelowLimit()
            }
            let header: NBDRequestHeader
            do {
                header = try reader.header()
            } catch let closed as NBDSocket.Closed {
                return closed.description
            } catch {
                return "protocol error: \(error)"
            }
            let length = Int(header.length)
            if header.command == .write {
                guard length <= NBDProtocol.maximumPayload else {
                    return "protocol error: WRITE of \(length) bytes (at most \(NBDProtocol.maximumPayload))"
                }
            }
            if header.command == .read, length > NBDProtocol.maximumPayload {
                return "protocol error: READ of \(length) bytes (at most \(NBDProtocol.maximumPayload))"
            }
            var payload: [UInt8] = []
            if header.command == .write {
                if reader.buffered < length { submit(&batch) }
                do { payload = try reader.payload(length) } catch { return error.description }
            }
            if header.command == .disconnect { return "client disconnected" }
            if header.command == .blockStatus {
                // Answered here, at once: it changes nothing, and the spec orders no request
                // before it that is still in flight.
                answerBlockStatus(header)
                flushReplies()
                continue
            }
            switch validate(header, payload: payload) {
            case .failure(let error):
                answer(header, .failure(error))
                flushReplies()
            case .success(let request):
                batch.headers.append(header)
                batch.requests.append(request)
            }
        }
    }

    /// Passes the batch to the backend.
    private func submit(_ batch: inout Batch) {
        guard !batch.requests.isEmpty else { return }
        let headers = batch.headers
        inFlight.lock()
        pending += headers.count
        inFlight.unlock()
        backend.perform(batch: batch.requests, completion: { [self] index, result in
            answer(headers[index], result)
            end()
        }, delivered: { [self] in flushReplies() })
        batch = Batch()
    }

    /// The request for the backend, or the error the spec requires.
    private func validate(_ header: NBDRequestHeader, payload: [UInt8]) -> Result<NBDBackendRequest, NBDError> {
        typealias E = NBDProtocol.Errno
        typealias F = NBDProtocol.CommandFlag
        guard let command = header.command else { return .failure(NBDError(E.einval, "unknown command \(header.type)")) }
        // FUA is advertised (NBD_FLAG_SEND_FUA), so the spec has every command accept it; on
        // a READ or FLUSH it asks for nothing more than the command does.
        let allowed: UInt16
        switch command {
        case .writeZeroes: allowed = F.fua | F.noHole | F.fastZero
        default: allowed = F.fua
        }
        guard header.flags & ~allowed == 0 else {
            return .failure(NBDError(E.einval, "flags 0x\(String(header.flags, radix: 16)) not valid for \(command)"))
        }
        let offset = Int64(clamping: header.offset), length = Int64(header.length)
        let size = backend.size
        let writing = [.write, .trim, .writeZeroes].contains(command)
        if writing, backend.readOnly { return .failure(NBDError(E.eperm, "the export is read-only")) }
        switch command {
        case .read, .write, .trim, .writeZeroes:
            guard header.offset <= UInt64(Int64.max), offset <= size, length <= size - offset else {
                // A write of either kind past the end is ENOSPC (the spec's "write request"); the rest EINVAL.
                let code = command == .write || command == .writeZeroes ? E.enospc : E.einval
                return .failure(NBDError(code, "\(command) at \(header.offset)+\(length) is past the end of the \(size)-byte export"))
            }
            guard offset % Int64(NBDProtocol.minimumBlockSize) == 0, length % Int64(NBDProtocol.minimumBlockSize) == 0 else {
                return .failure(NBDError(E.einval, "\(command) at \(offset)+\(length) is not aligned to \(NBDProtocol.minimumBlockSize) bytes"))
            }
        default: break
        }
        switch command {
        case .read: return .success(.read(offset: offset, length: Int(length)))
        case .flush: return .success(.flush)
        case .trim: return .success(.trim(offset: offset, length: length))
        case .writeZeroes:
            if header.flags & F.fastZero != 0 {
                return .failure(NBDError(E.enotsup, "zeroes are written as data here: no fast zero"))
            }
            return .success(.writeZeroes(offset: offset, length: length, fua: header.flags & F.fua != 0))
        case .write: return .success(.write(offset: offset, data: payload, fua: header.flags & F.fua != 0))
        case .disconnect, .cache, .blockStatus:
            return .failure(NBDError(E.einval, "\(command) is not supported (not advertised)"))
        }
    }

    private var inFlightCount: Int { inFlight.withLock { pending } }

    private func waitBelowLimit() {
        inFlight.withLock {
            while pending >= maximumInFlight { inFlight.wait() }
        }
    }

    private func end() {
        inFlight.lock()
        pending -= 1
        inFlight.broadcast()
        inFlight.unlock()
    }

    /// Sends the reply for `header`: simple, or structured chunks for READ (and BLOCK_STATUS's
    /// errors) when negotiated.
    private func answer(_ header: NBDRequestHeader, _ result: Result<[UInt8], NBDError>) {
        var w = BigEndianWriter()
        var data: [UInt8] = []
        if structuredReplies, header.command == .read || header.command == .blockStatus {
            switch result {
            case .success(let bytes) where bytes.isEmpty:
                // A zero-length read: an OFFSET_DATA chunk must describe at least one byte, so
                // the reply is its final NONE chunk alone.
                w.putFinalChunk(NBDProtocol.ChunkType.none, cookie: header.cookie, length: 0)
            case .success(let bytes):
                w.putFinalChunk(NBDProtocol.ChunkType.offsetData, cookie: header.cookie, length: 8 + bytes.count)
                w.put(header.offset)
                data = bytes
            case .failure(let error):
                let message = Array(error.message.utf8.prefix(4096))
                w.putFinalChunk(NBDProtocol.ChunkType.error, cookie: header.cookie, length: 6 + message.count)
                w.put(error.code)
                w.put(UInt16(message.count))
                data = message
            }
        } else {
            w.put(NBDProtocol.simpleReplyMagic)
            switch result {
            case .success(let bytes):
                w.put(UInt32(0))
                if header.command == .read { data = bytes }
            case .failure(let error):
                w.put(error.code)
            }
            w.put(header.cookie)
        }
        outbox.append(w.bytes, data)
    }

    /// Answers BLOCK_STATUS for `base:allocation`: one structured chunk of descriptors (holes
    /// are HOLE|ZERO, data 0) covering at most the request, then done — or the error the spec
    /// asks for. A backend that cannot tell answers "all data", as the spec allows.
    private func answerBlockStatus(_ header: NBDRequestHeader) {
        typealias E = NBDProtocol.Errno
        typealias F = NBDProtocol.CommandFlag
        let size = backend.size
        let refusal: NBDError?
        if !allocationContext {
            refusal = NBDError(E.einval, "BLOCK_STATUS without a metadata context (NBD_OPT_SET_META_CONTEXT base:allocation)")
        } else if header.flags & ~(F.fua | F.requestOne) != 0 {
            refusal = NBDError(E.einval, "flags 0x\(String(header.flags, radix: 16)) not valid for blockStatus")
        } else if header.length == 0 {
            refusal = NBDError(E.einval, "BLOCK_STATUS of 0 bytes")
        } else if header.offset > UInt64(size) || UInt64(header.length) > UInt64(size) - header.offset {
            refusal = NBDError(E.einval, "BLOCK_STATUS at \(header.offset)+\(header.length) is past the end of the \(size)-byte export")
        } else {
            refusal = nil
        }
        if let refusal {
            // An error chunk when structured replies were negotiated, a simple reply otherwise.
            return answer(header, .failure(refusal))
        }
        let offset = Int64(header.offset), length = Int64(header.length)
        var extents = (try? backend.allocation(offset: offset, length: length).get()) ?? []
        if extents.isEmpty { extents = [AllocationExtent(length: length, isHole: false)] }
        if header.flags & F.requestOne != 0 { extents = [extents[0]] }
        extents = Array(extents.prefix(Self.mostDescriptors))
        var descriptors = BigEndianWriter()
        descriptors.put(NBDProtocol.BaseAllocation.contextID)
        var covered: Int64 = 0
        for extent in extents where covered < length {
            let count = min(extent.length, length - covered)
            descriptors.put(UInt32(count))
            descriptors.put(extent.isHole ? NBDProtocol.BaseAllocation.hole | NBDProtocol.BaseAllocation.zero : 0)
            covered += count
        }
        var w = BigEndianWriter()
        w.putFinalChunk(NBDProtocol.ChunkType.blockStatus, cookie: header.cookie, length: descriptors.bytes.count)
        outbox.append(w.bytes, descriptors.bytes)
    }

    /// At most this many descriptors in one BLOCK_STATUS reply (the client asks again for
    /// the rest).
    static let mostDescriptors = 1 << 16

    /// Sends every reply encoded so far, in one write.
    private func flushReplies() {
        outbox.send(to: socket)
    }
}
