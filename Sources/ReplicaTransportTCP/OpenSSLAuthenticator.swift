import CReplicaOpenSSL
import ReplicaCore

/// HMAC, random bytes and constant-time comparison from the system OpenSSL: what
/// ``PeerAuthentication`` needs for `cram-hmac-alg`.
public struct OpenSSLAuthenticator: MessageAuthenticator {
    public let algorithm: String
    // `EVP_MD` pointers of OpenSSL's built-in digests live as long as the process.
    private nonisolated(unsafe) let digest: OpaquePointer

    /// The authenticator for `algorithm` (a `cram-hmac-alg` value); nil when OpenSSL does not
    /// provide that digest.
    public init?(algorithm: String) {
        guard let digest = EVP_get_digestbyname(algorithm) else { return nil }
        self.algorithm = algorithm
        self.digest = digest
    }

    public func code(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let produced = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                output.withUnsafeMutableBufferPointer { out in
                    HMAC(digest, keyBytes.baseAddress, Int32(keyBytes.count), messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                         messageBytes.count, out.baseAddress, &length)
                }
            }
        }
        // HMAC fails only without memory; an empty code then never matches the peer's.
        guard produced != nil else { return [] }
        return Array(output.prefix(Int(length)))
    }

    public func randomBytes(_ count: Int) throws(TransportError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let rc = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        guard rc == 1 else { throw TransportError("OpenSSL's random generator failed: \(OpenSSLErrors.drain())") }
        return bytes
    }

    public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count, !a.isEmpty else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }
}

/// OpenSSL's error queue as text.
enum OpenSSLErrors {
    /// The queued errors of this thread, oldest first, joined with "; " (and the queue
    /// emptied); "no error reported by OpenSSL" when it was empty.
    static func drain() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            guard code != 0 else { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "no error reported by OpenSSL" : messages.joined(separator: "; ")
    }
}
