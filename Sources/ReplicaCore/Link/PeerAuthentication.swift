/// Signs a message with a key: the HMAC of the configured `cram-hmac-alg` (OpenSSL's, in the
/// TCP transport; the core has no cryptography of its own).
public protocol MessageAuthenticator: Sendable {
    /// The algorithm's name as configured (`sha256`).
    var algorithm: String { get }
    /// HMAC(`key`, `message`).
    func code(key: [UInt8], message: [UInt8]) -> [UInt8]
    /// `count` bytes from a cryptographically secure random source.
    func randomBytes(_ count: Int) throws(TransportError) -> [UInt8]
    /// True when `a` and `b` are equal, compared in time that does not depend on where they
    /// differ.
    func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool
}

/// DRBD 8.4's peer authentication (`cram-hmac-alg` and `shared-secret`): each side sends a
/// random challenge, answers the peer's with HMAC(secret, challenge) and checks the peer's
/// answer to its own. Runs on every new stream of a link (data and meta), before any frame of
/// the link crosses it, so no state, UUID or data reaches an unauthenticated peer.
public struct PeerAuthentication: Sendable {
    /// The HMAC and random source.
    public let authenticator: any MessageAuthenticator
    /// The shared secret's bytes.
    public let secret: [UInt8]

    /// Challenge size, as DRBD's (`CHALLENGE_LEN`).
    public static let challengeBytes = 64
    /// The `cram-hmac-alg` values Replica offers: the hashes DRBD's documentation names that
    /// OpenSSL provides (`OpenSSLAuthenticatorTests` checks that it does).
    public static let algorithms = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512-224", "sha512-256",
                                    "sha3-224", "sha3-256", "sha3-384", "sha3-512", "sm3"]

    /// Authentication with `secret`, signed by `authenticator`.
    public init(authenticator: any MessageAuthenticator, secret: [UInt8]) {
        self.authenticator = authenticator
        self.secret = secret
    }

    /// Why an authentication did not succeed.
    public enum Failure: Error, Sendable, Equatable {
        /// The peer is not who it must be (wrong secret, no secret, a replayed challenge): a
        /// configuration to fix, so the node goes StandAlone (as DRBD does).
        case refused(String)
        /// The stream failed or timed out first: tried again at the next attempt.
        case transport(TransportError)
    }

    /// Authenticates the peer on `stream`: sends this side's challenge, answers the peer's,
    /// checks the peer's answer. Waits at most `timeoutMilliseconds` for each frame.
    public func authenticate(_ stream: any ByteStream, timeoutMilliseconds: Int32) throws(Failure) {
        do {
            let challenge = try authenticator.randomBytes(Self.challengeBytes)
            try Self.send(.authChallenge(challenge), on: stream)
            let peerChallenge = try Self.receive(.authChallenge, on: stream, timeoutMilliseconds: timeoutMilliseconds)
            guard peerChallenge.count >= Self.challengeBytes else {
                throw Failure.refused("Authentication of peer failed: its challenge has \(peerChallenge.count) bytes (at least \(Self.challengeBytes))")
            }
            guard !authenticator.constantTimeEqual(peerChallenge, challenge) else {
                throw Failure.refused("Authentication of peer failed: the peer presented the same challenge (a reflected connection)")
            }
            try Self.send(.authResponse(authenticator.code(key: secret, message: peerChallenge)), on: stream)
            let response = try Self.receive(.authResponse, on: stream, timeoutMilliseconds: timeoutMilliseconds)
            guard authenticator.constantTimeEqual(response, authenticator.code(key: secret, message: challenge)) else {
                throw Failure.refused("Authentication of peer failed: its response does not match (a different shared-secret or cram-hmac-alg than \(authenticator.algorithm) there)")
            }
        } catch let failure as Failure {
            throw failure
        } catch let error as TransportError {
            throw .transport(error)
        } catch {
            throw .transport(TransportError("\(error)"))
        }
    }

    private static func send(_ frame: Frame, on stream: any ByteStream) throws(TransportError) {
        let (header, payload) = FrameCodec.encode(frame)
        try stream.send(header + payload)
    }

    /// The payload of the next frame, which must be of `type`.
    private static func receive(_ type: FrameType, on stream: any ByteStream, timeoutMilliseconds: Int32) throws(Failure) -> [UInt8] {
        let headerBytes: [UInt8]
        do throws(TransportError) {
            guard try stream.waitForData(milliseconds: timeoutMilliseconds) else {
                throw TransportError("authentication: no \(type) frame from the peer within \(timeoutMilliseconds) ms")
            }
            headerBytes = try receiveBytes(FrameHeader.size, from: stream)
        } catch {
            throw .transport(error)
        }
        let header: FrameHeader
        do {
            header = try FrameHeader(bytes: headerBytes)
        } catch {
            throw .refused("Authentication of peer failed: it sent no \(type) frame but something else (\(error))")
        }
        guard header.type == type else {
            let hint = header.type == .authChallenge || header.type == .authResponse ? "" : " (no shared-secret configured there?)"
            throw .refused("Authentication of peer failed: it sent a \(header.type) frame where an \(type) frame was due\(hint)")
        }
        do {
            return try receiveBytes(Int(header.length), from: stream)
        } catch {
            throw .transport(error)
        }
    }

    private static func receiveBytes(_ count: Int, from stream: any ByteStream) throws(TransportError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { buffer in Result { () throws(TransportError) in try stream.receiveExactly(buffer) } }.get()
        return bytes
    }
}
