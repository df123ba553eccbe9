import CReplicaOpenSSL
import CReplicaOpenSSLShims
import ReplicaCore

/// What a PEM certificate file says, read with OpenSSL (for `replctl tls-check`): the first
/// certificate's subject, issuer, names, validity and fingerprint, and checks against a host
/// name, a CA file and a private key.
public struct CertificateInspection: Sendable {
    /// The subject (`/CN=alpha`).
    public var subject: String
    /// The issuer.
    public var issuer: String
    /// The subjectAltName extension as OpenSSL prints it (`DNS:alpha, IP Address:10.0.0.1`), or
    /// empty.
    public var alternativeNames: String
    /// Not before / not after, as OpenSSL prints them.
    public var notBefore: String
    public var notAfter: String
    /// Seconds until it expires (negative: expired); nil when unknown.
    public var expiresIn: Int?
    /// True when it is not valid yet.
    public var notYetValid: Bool
    /// SHA-256 of the DER form, `AB:CD:…`.
    public var fingerprint: String
    // The certificate, kept for the checks.
    private let certificate: Certificate

    /// Reads the first certificate of `path`.
    /// - Throws: ``TLSSetupError`` (option `tls-certificate`) when it cannot be read.
    public init(path: String, option: String = "tls-certificate") throws(TLSSetupError) {
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSSetupError(option: option, message: "\(path): \(OpenSSLErrors.drain())")
        }
        defer { BIO_free(bio) }
        guard let x509 = PEM_read_bio_X509(bio, nil, nil, nil) else {
            throw TLSSetupError(option: option, message: "\(path): no PEM certificate (\(OpenSSLErrors.drain()))")
        }
        certificate = Certificate(x509)
        subject = Self.name(X509_get_subject_name(x509))
        issuer = Self.name(X509_get_issuer_name(x509))
        alternativeNames = Self.alternativeNames(x509)
        notBefore = Self.time(X509_get0_notBefore(x509))
        notAfter = Self.time(X509_get0_notAfter(x509))
        var days: Int32 = 0, seconds: Int32 = 0
        expiresIn = ASN1_TIME_diff(&days, &seconds, nil, X509_get0_notAfter(x509)) == 1 ? Int(days) * 86_400 + Int(seconds) : nil
        notYetValid = X509_cmp_current_time(X509_get0_notBefore(x509)) > 0
        var digest = [UInt8](repeating: 0, count: 32)
        fingerprint = CReplicaOpenSSLShims_certificate_sha256(x509, &digest) == 1 ? HexText.colonSeparated(digest) : "?"
    }

    /// True when the certificate carries `host` (subjectAltName DNS, or the common name).
    public func names(_ host: String) -> Bool {
        X509_check_host(certificate.pointer, host, host.utf8.count, 0, nil) == 1
    }

    /// Nil when the certificate verifies against the CA certificates in `caFile` (chain,
    /// validity), else OpenSSL's reason.
    public func verification(againstCA caFile: String) -> String? {
        guard let store = X509_STORE_new() else { return "out of memory" }
        defer { X509_STORE_free(store) }
        guard X509_STORE_load_locations(store, caFile, nil) == 1 else { return "\(caFile): \(OpenSSLErrors.drain())" }
        guard let context = X509_STORE_CTX_new() else { return "out of memory" }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, certificate.pointer, nil) == 1 else { return OpenSSLErrors.drain() }
        if X509_verify_cert(context) == 1 { return nil }
        return String(cString: X509_verify_cert_error_string(Int(X509_STORE_CTX_get_error(context))))
    }

    private static func name(_ name: OpaquePointer?) -> String {
        guard let name, let text = X509_NAME_oneline(name, nil, 0) else { return "?" }
        defer { CRYPTO_free(text, #fileID, #line) }
        return String(cString: text)
    }

    private static func printed(_ body: (OpaquePointer) -> Void) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "?" }
        defer { BIO_free(bio) }
        body(bio)
        let pending = Int(BIO_ctrl_pending(bio))
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = bytes.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(pending)) }
        return String(decoding: bytes.prefix(max(0, Int(read))), as: UTF8.self)
    }

    private static func time(_ time: UnsafePointer<ASN1_TIME>?) -> String {
        guard let time else { return "?" }
        return printed { _ = ASN1_TIME_print($0, time) }
    }

    private static func alternativeNames(_ x509: OpaquePointer) -> String {
        let index = X509_get_ext_by_NID(x509, NID_subject_alt_name, -1)
        guard index >= 0, let extensionPointer = X509_get_ext(x509, index) else { return "" }
        return printed { _ = X509V3_EXT_print($0, extensionPointer, 0, 0) }
    }
}

/// An `X509` owned (freed when the last copy goes).
final class Certificate: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }
}
