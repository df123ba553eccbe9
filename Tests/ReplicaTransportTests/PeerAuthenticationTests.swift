#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import ReplicaCore
import ReplicaEngine
import ReplicaNBD
import ReplicaTransportTCP

/// DRBD 8.4's challenge-response authentication over real sockets, with OpenSSL's HMAC.
@Suite("Peer authentication")
struct PeerAuthenticationTests {
    @Test func everyOfferedHashIsProvidedByOpenSSL() {
        for name in PeerAuthentication.algorithms {
            #expect(OpenSSLAuthenticator(algorithm: name) != nil, "OpenSSL lacks \(name)")
        }
        #expect(OpenSSLAuthenticator(algorithm: "whirlpool-9") == nil)
    }

    @Test func hmacMatchesRFC4231() throws {
        // RFC 4231, test case 2.
        let sha256 = try #require(OpenSSLAuthenticator(algorithm: "sha256"))
        let code = sha256.code(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(code.map { String(format: "%02x", $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let sha1 = try #require(OpenSSLAuthenticator(algorithm: "sha1"))
        #expect(sha1.code(key: [1], message: [2]).count == 20)
        #expect(sha256.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!sha256.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!sha256.constantTimeEqual([1, 2], [1, 2, 3]))
        #expect(!sha256.constantTimeEqual([], []))
        #expect(try sha256.randomBytes(64) != sha256.randomBytes(64))
    }

    /// Runs the two sides on a connected socket pair at once; each side's outcome.
    private func exchange(_ left: PeerAuthentication?, _ right: PeerAuthentication?,
                          rightSends: [UInt8]? = nil) -> (Result<Void, PeerAuthentication.Failure>, Result<Void, PeerAuthentication.Failure>) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let a = TCPStream(descriptor: fds[0]), b = TCPStream(descriptor: fds[1])
        defer { a.close(); b.close() }
        nonisolated(unsafe) var rightOutcome: Result<Void, PeerAuthentication.Failure> = .success(())
        let thread = Thread {
            if let right {
                rightOutcome = Result { () throws(PeerAuthentication.Failure) in try right.authenticate(b, timeoutMilliseconds: 2000) }
            } else if let bytes = rightSends {
                try? bytes.withUnsafeBytes { buffer in try b.send([buffer], more: false) }
            }
        }
        thread.start()
        let leftOutcome = Result { () throws(PeerAuthentication.Failure) in try left!.authenticate(a, timeoutMilliseconds: 2000) }
        while !thread.isFinished { usleep(1000) }
        return (leftOutcome, rightOutcome)
    }

    private func authentication(_ algorithm: String, _ secret: String) -> PeerAuthentication {
        PeerAuthentication(authenticator: OpenSSLAuthenticator(algorithm: algorithm)!, secret: Array(secret.utf8))
    }

    @Test(arguments: PeerAuthentication.algorithms)
    func theSameSecretAuthenticatesBothSides(algorithm: String) {
        let (left, right) = exchange(authentication(algorithm, "s3cret"), authentication(algorithm, "s3cret"))
        #expect((try? left.get()) != nil)
        #expect((try? right.get()) != nil)
    }

    @Test func aDifferentSecretIsRefusedOnBothSides() {
        let (left, right) = exchange(authentication("sha1", "one"), authentication("sha1", "two"))
        for outcome in [left, right] {
            guard case .failure(.refused(let reason)) = outcome else {
                Issue.record("expected a refusal, got \(outcome)")
                continue
            }
            #expect(reason.hasPrefix("Authentication of peer failed"))
        }
    }

    @Test func aPeerWithoutASecretIsRefused() {
        // The peer starts the link's handshake (a features frame) instead of a challenge.
        let (header, payload) = FrameCodec.encode(.features(FeaturesPayload(protocolMin: 1, protocolMax: 1, featureFlags: 0, nodeID: 0)))
        let (left, _) = exchange(authentication("sha256", "x"), nil, rightSends: header + payload)
        guard case .failure(.refused(let reason)) = left else {
            Issue.record("expected a refusal, got \(left)")
            return
        }
        #expect(reason.contains("features frame where an authChallenge frame was due"))
    }

    @Test func aReflectedChallengeIsRefused() throws {
        // A peer that echoes the challenge back (to have this node sign it for it).
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let a = TCPStream(descriptor: fds[0]), b = TCPStream(descriptor: fds[1])
        defer { a.close(); b.close() }
        let thread = Thread {
            var frame = [UInt8](repeating: 0, count: FrameHeader.size + PeerAuthentication.challengeBytes)
            _ = try? frame.withUnsafeMutableBytes { buffer in try b.receiveExactly(buffer) }
            _ = try? frame.withUnsafeBytes { buffer in try b.send([buffer], more: false) }
        }
        thread.start()
        let outcome = Result { () throws(PeerAuthentication.Failure) in try authentication("sha256", "x").authenticate(a, timeoutMilliseconds: 2000) }
        while !thread.isFinished { usleep(1000) }
        guard case .failure(.refused(let reason)) = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(reason.contains("same challenge"))
    }

    @Test func aSilentPeerIsATransientFailure() {
        let (left, _) = exchange(authentication("sha256", "x"), nil, rightSends: [])
        guard case .failure(.transport) = left else {
            Issue.record("expected a transport failure (retried), got \(left)")
            return
        }
    }

    /// psktool's `identity:hexkey` lines for `nbd-tls-psk`; anything else refused with its line.
    @Test func preSharedKeyFilesAreReadAsPsktoolWritesThem() throws {
        let path = NSTemporaryDirectory() + "replica-psk-\(getpid()).psk"
        defer { unlink(path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data("alice:00ff10\n\nbob:0102030405060708\n".utf8))
        let keys = try NBDTLSPolicy.preSharedKeys(path)
        #expect(keys.map(\.identity) == ["alice", "bob"])
        #expect(keys.map(\.key) == [[0x00, 0xFF, 0x10], [1, 2, 3, 4, 5, 6, 7, 8]])
        #expect(try TLSContext(preSharedKeys: keys).preSharedKeyIdentities == ["alice", "bob"])
        for bad in ["alice", "alice:0g", "alice:123", ":00", "alice:"] {
            _ = FileManager.default.createFile(atPath: path, contents: Data("bob:00\n\(bad)\n".utf8))
            #expect(throws: TLSSetupError.self) { try NBDTLSPolicy.preSharedKeys(path) }
            do {
                _ = try NBDTLSPolicy.preSharedKeys(path)
            } catch {
                #expect(error.description.contains("\(path):2: expected identity:hexkey"), "\(error)")
            }
        }
    }
}
