import CReplicaOpenSSL

/// Facts about the system OpenSSL the TLS layer of the TCP transport is built on.
public enum TLSLibrary {
    /// OpenSSL's version text, e.g. `OpenSSL 3.0.19 ...`.
    public static var version: String {
        String(cString: OpenSSL_version(0))  // OPENSSL_VERSION
    }

    /// OpenSSL's numeric version (`OpenSSL_version_num()`).
    public static var versionNumber: UInt { UInt(OpenSSL_version_num()) }
}
