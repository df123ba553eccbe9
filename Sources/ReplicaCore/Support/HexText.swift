/// Bytes written as hex digits in resource files and key files: certificate fingerprints
/// (`tls-peer-fingerprint`) and pre-shared keys (`nbd-tls-psk`).
public enum HexText {
    /// The bytes of an even, non-zero number of hex digits; nil for anything else.
    public static func bytes(_ hex: some StringProtocol) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<(index + 2)], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// A SHA-256 fingerprint written as 64 hex digits, optionally in colon-separated pairs and
    /// after `sha256:` (`openssl x509 -noout -fingerprint -sha256` prints `AB:CD:…`); nil for
    /// anything else.
    public static func fingerprint(_ text: String) -> [UInt8]? {
        var hex = Substring(text)
        if hex.lowercased().hasPrefix("sha256:") { hex = hex.dropFirst(7) }
        let digits = hex.filter { $0 != ":" }
        guard digits.count == 64 else { return nil }
        return bytes(digits)
    }

    /// `bytes` as `AB:CD:…`, as `openssl x509 -fingerprint` prints a fingerprint.
    public static func colonSeparated(_ bytes: [UInt8]) -> String {
        bytes.map { byte in String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true) }.joined(separator: ":")
    }
}
