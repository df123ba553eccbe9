/// A layer that secures each new stream of a ``StreamTransport`` before anything of the link
/// crosses it: TLS (the TCP transport's `TLSStreamSecurity`). The secured stream replaces the
/// plain one; there is never a fallback to the plain stream.
public protocol StreamSecurity: Sendable {
    /// The layer's name in status and logs (`tls`).
    var name: String { get }
    /// Secures `stream` (as the side that connected when `dialled`), giving up after
    /// `timeoutMilliseconds`.
    /// - Throws: ``TransportError`` with the reason (the stream is closed by the caller).
    func secure(_ stream: any ByteStream, dialled: Bool, timeoutMilliseconds: Int32) throws(TransportError) -> any ByteStream
}
