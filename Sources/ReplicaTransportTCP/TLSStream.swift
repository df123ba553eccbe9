import CReplicaOpenSSL
import CReplicaOpenSSLShims
import Foundation
import ReplicaCore

/// TLS 1.3 over another ``ByteStream`` (a TCP connection), with OpenSSL working on memory
/// buffers: OpenSSL encrypts and decrypts, this class moves the records. OpenSSL forbids using
/// one `SSL` object from two threads at once; the stream's receiving thread and its sending
/// thread each hold `engine` for their OpenSSL calls only, which never wait for the network,
/// and do their socket I/O outside it.
///
/// Sending keeps its records in order across threads: what OpenSSL writes (the sender's
/// records, and any record a receive produced) is taken from the output buffer by the sender
/// alone, under `sending`. A send that cannot finish without waiting keeps the encrypted rest
/// (``unsent``) and reports its plaintext as not taken; the caller offers those bytes again
/// first (``ByteStream``'s rule), and they are skipped then, not encrypted twice.
final class TLSStream: ByteStream, @unchecked Sendable {
    private let inner: any ByteStream
    // SSL*, and its two memory BIOs (owned by the SSL object).
    private let ssl: OpaquePointer
    private let input: OpaquePointer
    private let output: OpaquePointer
    /// Held for every OpenSSL call on `ssl`.
    private let engine = NSLock()
    /// Held by the one sending call at a time; guards `unsent`, `unsentOffset`, `unsentPlain`.
    private let sending = NSLock()
    private var unsent: [UInt8] = []
    private var unsentOffset = 0
    /// Plaintext bytes the caller was told were not taken whose records are in `unsent`.
    private var unsentPlain = 0
    /// The receiving thread's buffer for ciphertext from the socket.
    private let ciphertext = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
    /// The sending call's buffer for the records of one batch (under `sending`; grown when a
    /// batch needs more).
    private var sealed = UnsafeMutableRawBufferPointer.allocate(byteCount: TLSStream.batchPlaintext + (64 << 10), alignment: 16)
    /// The sending call's buffer for gathering small pieces into one record (under `sending`).
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: TLSStream.recordPlaintext, alignment: 16)

    /// Largest plaintext of one TLS record.
    static let recordPlaintext = 16 << 10
    /// Plaintext encrypted before its records are handed to the socket.
    static let batchPlaintext = 256 << 10

    private init(inner: any ByteStream, ssl: OpaquePointer, input: OpaquePointer, output: OpaquePointer) {
        self.inner = inner
        self.ssl = ssl
        self.input = input
        self.output = output
    }

    deinit {
        SSL_free(ssl)
        scratch.deallocate()
        ciphertext.deallocate()
        sealed.deallocate()
    }

    /// Runs the TLS handshake on `inner` (as the client when `dialled`), verifying the peer's
    /// certificate as `context` says and against `peerName` (when given), within
    /// `timeoutMilliseconds`. With `confirms` (Replica's links) the accepting side then sends
    /// ``confirmation``: in TLS 1.3 the client's handshake ends before the server has checked
    /// the client's certificate, so the client waits for the confirmation or the alert that
    /// says why not. Other protocols (NBD) go on with their own first message.
    static func handshake(_ inner: any ByteStream, context: TLSContext, peerName: String?, dialled: Bool,
                          confirms: Bool = true, timeoutMilliseconds: Int32) throws(TransportError) -> TLSStream {
        guard let ssl = SSL_new(context.context) else { throw TransportError("TLS: SSL_new: \(OpenSSLErrors.drain())") }
        guard let input = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TransportError("TLS: out of memory for the record buffers")
        }
        guard let output = BIO_new(BIO_s_mem()) else {
            BIO_free(input)
            SSL_free(ssl)
            throw TransportError("TLS: out of memory for the record buffers")
        }
        SSL_set_bio(ssl, input, output)
        let stream = TLSStream(inner: inner, ssl: ssl, input: input, output: output)
        if let peerName {
            guard SSL_set1_host(ssl, peerName) == 1 else { throw TransportError("TLS: cannot expect host name \(peerName): \(OpenSSLErrors.drain())") }
        }
        if dialled {
            if let peerName { _ = CReplicaOpenSSLShims_SSL_set_tlsext_host_name(ssl, peerName) }
            SSL_set_connect_state(ssl)
        } else {
            SSL_set_accept_state(ssl)
        }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMilliseconds) * 1_000_000
        try stream.runHandshake(dialled: dialled, deadline: deadline)
        if !confirms {
            return stream
        } else if dialled {
            var confirmation = [UInt8](repeating: 0, count: Self.confirmation.count)
            try stream.receiveConfirmation(&confirmation, deadline: deadline)
            guard confirmation == Self.confirmation else { throw TransportError("TLS: the peer's confirmation is not Replica's (\(confirmation))") }
        } else {
            try stream.send(Self.confirmation)
        }
        return stream
    }

    /// A TLS record of a fatal protocol_version alert.
    static let protocolVersionAlert: [UInt8] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]

    /// What the accepting side sends once it accepted the peer's certificate.
    static let confirmation: [UInt8] = Array("RPLS".utf8)

    private static func remaining(until deadline: UInt64) -> Int32 {
        let now = DispatchTime.now().uptimeNanoseconds
        return now >= deadline ? 0 : Int32(clamping: (deadline - now) / 1_000_000)
    }

    private func runHandshake(dialled: Bool, deadline: UInt64) throws(TransportError) {
        var first = true
        while true {
            let (rc, error) = withEngine { () -> (Int32, Int32) in
                let rc = SSL_do_handshake(ssl)
                return (rc, rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc))
            }
            let reason = error == SSL_ERROR_NONE || error == SSL_ERROR_WANT_READ ? nil : failure("handshake", error)
            // Whatever OpenSSL wrote goes out, an alert included: the peer learns why.
            do {
                try flushOutput()
            } catch {
                if reason == nil { throw error }
            }
            if let reason { throw TransportError(reason) }
            if rc == 1 { return }
            let wait = Self.remaining(until: deadline)
            guard wait > 0, try inner.waitForData(milliseconds: wait) else {
                throw TransportError("TLS: no handshake from the peer within the time allowed")
            }
            let count: Int
            do {
                count = try receiveCiphertext()
            } catch where error.isClosedByPeer {
                throw TransportError(dialled ? "TLS: the peer closed the connection during the handshake (has it `tls yes`? no fallback to plain text)"
                                             : "TLS: the peer closed the connection during the handshake")
            }
            if first, !dialled, count >= 4, Array(ciphertext[0..<4]) == [0x52, 0x50, 0x4C, 0x43] as [UInt8] {
                // A fatal protocol_version alert in a plain record: the plain node's frame
                // reader names it as TLS.
                try? inner.send(Self.protocolVersionAlert)
                throw TransportError("TLS: the peer sent plain Replica frames, not TLS: it has no `tls yes` (this node requires TLS; no fallback to plain text)")
            }
            first = false
        }
    }

    private func receiveConfirmation(_ bytes: inout [UInt8], deadline: UInt64) throws(TransportError) {
        var done = 0
        while done < bytes.count {
            let wait = Self.remaining(until: deadline)
            guard wait > 0, try waitForData(milliseconds: wait) else {
                throw TransportError("TLS: the peer did not confirm the handshake in time")
            }
            do {
                done += try bytes.withUnsafeMutableBytes { buffer in
                    Result { () throws(TransportError) in try receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...])) }
                }.get()
            } catch {
                // An alert instead of the confirmation: the peer refused this node's certificate.
                let reason = error.description.replacingOccurrences(of: "TLS receive failed: ", with: "")
                throw TransportError("TLS handshake failed: the peer refused this node's certificate: \(reason)")
            }
        }
    }

    /// Receives ciphertext from the socket into OpenSSL's input buffer; the bytes received.
    private func receiveCiphertext() throws(TransportError) -> Int {
        let count = try inner.receive(into: ciphertext)
        let written = withEngine { BIO_write(input, ciphertext.baseAddress, Int32(count)) }
        guard written == Int32(count) else { throw TransportError("TLS: out of memory for received records") }
        return count
    }

    /// Runs `body` holding `engine`, with OpenSSL's error queue of this thread cleared first.
    private func withEngine<Value>(_ body: () -> Value) -> Value {
        engine.lock()
        defer { engine.unlock() }
        ERR_clear_error()
        return body()
    }

    /// A readable reason for `error` of an OpenSSL call during `operation` (call right after).
    private func failure(_ operation: String, _ error: Int32) -> String {
        switch error {
        case SSL_ERROR_ZERO_RETURN:
            return TransportError.closedByPeer
        case SSL_ERROR_SSL:
            var reason = "TLS \(operation) failed: \(OpenSSLErrors.drain())"
            let verification = SSL_get_verify_result(ssl)
            if verification != X509_V_OK {
                reason += " (peer certificate: \(String(cString: X509_verify_cert_error_string(verification))))"
            }
            return reason
        case SSL_ERROR_SYSCALL:
            return "TLS \(operation) failed: \(OpenSSLErrors.drain())"
        default:
            return "TLS \(operation) failed: OpenSSL error \(error): \(OpenSSLErrors.drain())"
        }
    }

    /// Takes what OpenSSL has written (records, alerts) from its output buffer.
    private func takeOutput() -> [UInt8] {
        withEngine {
            let pending = Int(BIO_ctrl_pending(output))
            guard pending > 0 else { return [] }
            var bytes = [UInt8](repeating: 0, count: pending)
            let read = bytes.withUnsafeMutableBytes { BIO_read(output, $0.baseAddress, Int32(pending)) }
            return read > 0 ? Array(bytes.prefix(Int(read))) : []
        }
    }

    /// Sends what OpenSSL has written, waiting as long as the peer makes it (handshake).
    private func flushOutput() throws(TransportError) {
        let bytes = takeOutput()
        guard !bytes.isEmpty else { return }
        try inner.send(bytes)
    }

    // MARK: - ByteStream

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            let (count, error) = withEngine { () -> (Int32, Int32) in
                let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
                return (count, count > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, count))
            }
            if count > 0 { return Int(count) }
            guard error == SSL_ERROR_WANT_READ else { throw TransportError(failure("receive", error)) }
            do {
                _ = try receiveCiphertext()
            } catch where error.isClosedByPeer {
                // Without close_notify the end may have been forged by someone on the path.
                throw TransportError("TLS: the connection ended without the peer's close_notify")
            }
        }
    }

    func waitForData(milliseconds: Int32) throws(TransportError) -> Bool {
        let buffered = withEngine { SSL_pending(ssl) > 0 || BIO_ctrl_pending(input) > 0 }
        if buffered { return true }
        return try inner.waitForData(milliseconds: milliseconds)
    }

    func send(_ buffers: [UnsafeRawBufferPointer], more: Bool) throws(TransportError) {
        sending.lock()
        defer { sending.unlock() }
        try finishUnsent()
        var plaintext = PlaintextCursor(buffers, skipping: unsentPlain)
        unsentPlain = 0
        while !plaintext.isAtEnd {
            let records = try encrypt(&plaintext, upTo: Self.batchPlaintext)
            try inner.send([records.bytes], more: more || !plaintext.isAtEnd)
        }
        // Records a receive produced meanwhile (a key update's answer) go out too.
        let rest = takeOutput()
        if !rest.isEmpty { try inner.send(rest, more: more) }
    }

    func sendWithoutWaiting(_ buffers: [UnsafeRawBufferPointer]) throws(TransportError) -> Int {
        guard sending.try() else { return 0 }
        defer { sending.unlock() }
        var taken = 0
        if unsentOffset < unsent.count {
            unsentOffset += try inner.sendWithoutWaiting(unsent[unsentOffset...])
            guard unsentOffset == unsent.count else { return 0 }
            unsent = []
            unsentOffset = 0
        }
        taken = unsentPlain
        var plaintext = PlaintextCursor(buffers, skipping: unsentPlain)
        unsentPlain = 0
        guard !plaintext.isAtEnd else { return taken }
        let records = try encrypt(&plaintext, upTo: Self.batchPlaintext)
        let written = try inner.sendWithoutWaiting([records.bytes])
        // Whole records on the wire are taken; the rest waits in `unsent` for the next send.
        var end = 0
        for (index, record) in records.records.enumerated() {
            guard end + record.cipher <= written else {
                unsent = Array(UnsafeRawBufferPointer(rebasing: records.bytes[written...]))
                unsentPlain = records.records[index...].reduce(0) { $0 + $1.plain }
                return taken
            }
            end += record.cipher
            taken += record.plain
        }
        return taken
    }

    /// Sends the encrypted rest of an earlier send, waiting for the peer.
    private func finishUnsent() throws(TransportError) {
        guard unsentOffset < unsent.count else { return }
        try inner.send(unsent[unsentOffset...], more: true)
        unsent = []
        unsentOffset = 0
    }

    /// Encrypts up to `limit` plaintext bytes from `plaintext` into records: their bytes (with
    /// any output a receive left before them) and each record's plaintext and ciphertext sizes.
    private func encrypt(_ plaintext: inout PlaintextCursor, upTo limit: Int) throws(TransportError) -> (bytes: UnsafeRawBufferPointer, records: [(plain: Int, cipher: Int)]) {
        var records: [(plain: Int, cipher: Int)] = []
        var encrypted = 0
        engine.lock()
        defer { engine.unlock() }
        ERR_clear_error()
        let before = Int(BIO_ctrl_pending(output))
        if before > 0 { records.append((0, before)) }
        while encrypted < limit, !plaintext.isAtEnd {
            let chunk = plaintext.next(upTo: Self.recordPlaintext, scratch: scratch)
            let pendingBefore = Int(BIO_ctrl_pending(output))
            let written = SSL_write(ssl, chunk.baseAddress, Int32(chunk.count))
            guard written == Int32(chunk.count) else {
                let error = SSL_get_error(ssl, written)
                throw TransportError(failure("send", error))
            }
            records.append((chunk.count, Int(BIO_ctrl_pending(output)) - pendingBefore))
            encrypted += chunk.count
        }
        let total = Int(BIO_ctrl_pending(output))
        if total > sealed.count {
            sealed.deallocate()
            sealed = .allocate(byteCount: total, alignment: 16)
        }
        let read = BIO_read(output, sealed.baseAddress, Int32(total))
        guard read == Int32(total) else { throw TransportError("TLS: records could not be taken from OpenSSL's buffer") }
        return (UnsafeRawBufferPointer(rebasing: sealed[0..<total]), records)
    }

    func shutdownSending() {
        sending.lock()
        defer { sending.unlock() }
        do {
            try finishUnsent()
            _ = withEngine { SSL_shutdown(ssl) }
            try flushOutput()
        } catch {
            // The connection is going anyway; the peer then sees an end without close_notify.
        }
        inner.shutdownSending()
    }

    func close() { inner.close() }

    var splicing: (any SplicingStream)? { nil }
}

/// Walks the plaintext of a gather send, a record's worth at a time: a piece of one buffer in
/// place, or small pieces of several copied together (so that a 16-byte header does not make
/// a record of its own).
struct PlaintextCursor {
    private let buffers: [UnsafeRawBufferPointer]
    private var index = 0
    private var offset = 0

    /// A cursor over `buffers` after their first `skipping` bytes.
    init(_ buffers: [UnsafeRawBufferPointer], skipping: Int) {
        self.buffers = buffers
        var skip = skipping
        while index < buffers.count, skip >= buffers[index].count - offset {
            skip -= buffers[index].count - offset
            index += 1
            offset = 0
        }
        offset += skip
        advancePastEmpty()
    }

    var isAtEnd: Bool { index >= buffers.count }

    private mutating func advancePastEmpty() {
        while index < buffers.count, offset >= buffers[index].count {
            index += 1
            offset = 0
        }
    }

    /// The next piece of at most `limit` bytes: in place when the current buffer has `limit`
    /// bytes left or is the last, else gathered into `scratch` (valid until the next call).
    mutating func next(upTo limit: Int, scratch: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer {
        let current = buffers[index]
        let left = current.count - offset
        if left >= limit || index == buffers.count - 1 {
            let piece = UnsafeRawBufferPointer(rebasing: current[offset..<(offset + min(left, limit))])
            offset += piece.count
            advancePastEmpty()
            return piece
        }
        let capacity = min(limit, scratch.count)
        var filled = 0
        while filled < capacity, index < buffers.count {
            let buffer = buffers[index]
            let take = min(buffer.count - offset, capacity - filled)
            UnsafeMutableRawBufferPointer(rebasing: scratch[filled..<(filled + take)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + take)]))
            filled += take
            offset += take
            advancePastEmpty()
        }
        return UnsafeRawBufferPointer(rebasing: scratch[0..<filled])
    }
}
