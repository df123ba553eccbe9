import CReplicaOpenSSL
import CReplicaOpenSSLShims
import ReplicaCore

/// The TLS settings of a connection (`net { tls yes; ... }`): this node's certificate and key
/// (PEM files), and how the peer's certificate is checked — against a CA, a pinned SHA-256
/// fingerprint of the peer's certificate, or both.
public struct TLSSettings: Sendable, Equatable {
    /// This node's certificate chain (PEM), `tls-certificate`.
    public var certificateFile: String
    /// This node's private key (PEM), `tls-privkey`.
    public var privateKeyFile: String
    /// The CA certificates (PEM) the peer's certificate must lead to, `tls-ca`.
    public var caFile: String?
    /// The SHA-256 of the peer certificate's DER form, `tls-peer-fingerprint`.
    public var peerFingerprint: [UInt8]?
    /// TLS 1.3 cipher suites in OpenSSL's syntax (`TLS_AES_128_GCM_SHA256:...`), or nil for
    /// OpenSSL's defaults, `tls-ciphersuites`.
    public var cipherSuites: String?

    /// Settings with this node's certificate and key.
    public init(certificateFile: String, privateKeyFile: String, caFile: String? = nil, peerFingerprint: [UInt8]? = nil,
                cipherSuites: String? = nil) {
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.caFile = caFile
        self.peerFingerprint = peerFingerprint
        self.cipherSuites = cipherSuites
    }
}

/// Why TLS settings could not be loaded: which setting, and OpenSSL's reason.
public struct TLSSetupError: Error, Sendable, CustomStringConvertible {
    /// The option the error is about (`tls-certificate`, `tls-privkey`, `tls-ca`, `tls-ciphersuites`).
    public var option: String
    /// What is wrong.
    public var message: String
    public var description: String { "\(option): \(message)" }

    /// An error about `option`.
    public init(option: String, message: String) {
        self.option = option
        self.message = message
    }
}

/// An OpenSSL context for TLS 1.3 only, both roles, mutual authentication: the certificate and
/// key loaded and checked against each other, the peer verification set, no session tickets,
/// no renegotiation, no compression. Shared by every stream of the connection (OpenSSL allows
/// making `SSL` objects from one context on several threads).
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    /// The settings it was made from (nil for a pre-shared-key context).
    public let settings: TLSSettings?
    /// The identities of a pre-shared-key context (empty otherwise).
    public let preSharedKeyIdentities: [String]

    /// A context for TLS 1.3 only, without tickets, renegotiation or compression.
    private static func base() throws(TLSSetupError) -> OpaquePointer {
        guard let context = SSL_CTX_new(TLS_method()) else {
            throw TLSSetupError(option: "tls", message: "OpenSSL could not make a context: \(OpenSSLErrors.drain())")
        }
        let tls13 = CReplicaOpenSSLShims_TLS1_3_VERSION()
        guard CReplicaOpenSSLShims_SSL_CTX_set_min_proto_version(context, tls13) == 1,
              CReplicaOpenSSLShims_SSL_CTX_set_max_proto_version(context, tls13) == 1 else {
            SSL_CTX_free(context)
            throw TLSSetupError(option: "tls", message: "this OpenSSL cannot do TLS 1.3: \(OpenSSLErrors.drain())")
        }
        _ = CReplicaOpenSSLShims_SSL_CTX_set_options(context, CReplicaOpenSSLShims_hardening_options())
        _ = CReplicaOpenSSLShims_SSL_CTX_set_mode(context, CReplicaOpenSSLShims_partial_write_modes())
        _ = SSL_CTX_set_num_tickets(context, 0)
        ERR_clear_error()
        return context
    }

    /// A server context that authenticates clients by pre-shared keys (TLS-PSK, as nbdkit's
    /// `--tls-psk`), with no certificate: a client must offer one of these identities and
    /// prove it has its key.
    /// - Throws: ``TLSSetupError`` when OpenSSL refuses the table.
    public init(preSharedKeys: [(identity: String, key: [UInt8])]) throws(TLSSetupError) {
        let context = try Self.base()
        self.context = context
        settings = nil
        preSharedKeyIdentities = preSharedKeys.map(\.identity)
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        let identities = preSharedKeys.map { strdup($0.identity) }
        defer { identities.forEach { free($0) } }
        let keys = preSharedKeys.map { entry -> UnsafeMutablePointer<UInt8> in
            let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, entry.key.count))
            copy.initialize(from: entry.key, count: entry.key.count)
            return copy
        }
        defer { keys.forEach { $0.deallocate() } }
        let lengths = preSharedKeys.map { UInt32($0.key.count) }
        let stored = identities.map { UnsafePointer($0) }.withUnsafeBufferPointer { identityPointers in
            keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { keyPointers in
                lengths.withUnsafeBufferPointer { lengthPointer in
                    CReplicaOpenSSLShims_set_psk_table(context, identityPointers.baseAddress, keyPointers.baseAddress, lengthPointer.baseAddress,
                                                       Int32(preSharedKeys.count))
                }
            }
        }
        guard stored == 1 else { throw TLSSetupError(option: "tls-psk", message: "OpenSSL refused the keys: \(OpenSSLErrors.drain())") }
    }

    /// Loads `settings`. With `requirePeerCertificate` false and neither a CA nor a pin, the
    /// peer is not asked for a certificate (an NBD server without client certificates).
    /// - Throws: ``TLSSetupError`` naming the setting that failed and OpenSSL's reason.
    public init(_ settings: TLSSettings, requirePeerCertificate: Bool = true) throws(TLSSetupError) {
        let context = try Self.base()
        self.context = context
        self.settings = settings
        preSharedKeyIdentities = []
        guard SSL_CTX_use_certificate_chain_file(context, settings.certificateFile) == 1 else {
            throw TLSSetupError(option: "tls-certificate", message: "\(settings.certificateFile): \(OpenSSLErrors.drain())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, settings.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            let errors = OpenSSLErrors.drain()
            let mismatch = errors.contains("key values mismatch") ? " is not the key of the certificate in \(settings.certificateFile)" : ""
            throw TLSSetupError(option: "tls-privkey", message: "\(settings.privateKeyFile)\(mismatch): \(errors)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSSetupError(option: "tls-privkey", message: "\(settings.privateKeyFile) is not the key of the certificate in \(settings.certificateFile) (\(OpenSSLErrors.drain()))")
        }
        if let ca = settings.caFile {
            guard SSL_CTX_load_verify_locations(context, ca, nil) == 1 else {
                throw TLSSetupError(option: "tls-ca", message: "\(ca): \(OpenSSLErrors.drain())")
            }
        }
        if let suites = settings.cipherSuites {
            guard SSL_CTX_set_ciphersuites(context, suites) == 1 else {
                throw TLSSetupError(option: "tls-ciphersuites", message: "'\(suites)' names no TLS 1.3 cipher suite OpenSSL has: \(OpenSSLErrors.drain())")
            }
        }
        let verified: Int32
        if !requirePeerCertificate, settings.caFile == nil, settings.peerFingerprint == nil {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            verified = 1
        } else if let pin = settings.peerFingerprint, pin.count == 32 {
            verified = pin.withUnsafeBufferPointer { CReplicaOpenSSLShims_set_peer_verification(context, $0.baseAddress, settings.caFile == nil ? 0 : 1) }
        } else {
            verified = CReplicaOpenSSLShims_set_peer_verification(context, nil, 1)
        }
        guard verified == 1 else { throw TLSSetupError(option: "tls", message: "peer verification could not be set: \(OpenSSLErrors.drain())") }
    }

    deinit { SSL_CTX_free(context) }

    /// The SHA-256 fingerprint of this node's certificate (what the peer pins), as
    /// `openssl x509 -fingerprint -sha256` prints it.
    public var certificateFingerprint: String? {
        guard let certificate = SSL_CTX_get0_certificate(context) else { return nil }
        var digest = [UInt8](repeating: 0, count: 32)
        guard CReplicaOpenSSLShims_certificate_sha256(certificate, &digest) == 1 else { return nil }
        return HexText.colonSeparated(digest)
    }
}

/// Starts TLS as the server on an accepted stream (NBD's STARTTLS): the client's certificate is
/// verified when the context asks for one, no host name is expected of it.
public enum TLSServerHandshake {
    /// `stream` upgraded to TLS with `context`, within `timeoutMilliseconds`.
    public static func upgrade(_ stream: any ByteStream, context: TLSContext, timeoutMilliseconds: Int32) throws(TransportError) -> any ByteStream {
        try TLSStream.handshake(stream, context: context, peerName: nil, dialled: false, confirms: false, timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// TLS 1.3 on every stream of a link: ``StreamSecurity`` with OpenSSL. The peer's certificate
/// must name `peerName` (the peer's `on` section) and pass the context's verification.
public struct TLSStreamSecurity: StreamSecurity {
    /// The loaded context.
    public let context: TLSContext
    /// The host name the peer's certificate must carry.
    public let peerName: String

    /// TLS with `context`, expecting the peer to be `peerName`.
    public init(context: TLSContext, peerName: String) {
        self.context = context
        self.peerName = peerName
    }

    public var name: String { "tls" }

    public func secure(_ stream: any ByteStream, dialled: Bool, timeoutMilliseconds: Int32) throws(TransportError) -> any ByteStream {
        try TLSStream.handshake(stream, context: context, peerName: peerName, dialled: dialled, timeoutMilliseconds: timeoutMilliseconds)
    }
}
