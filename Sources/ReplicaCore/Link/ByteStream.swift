/// An ordered, reliable byte stream to the peer: one channel of a link over TCP (or TLS over
/// TCP). The link above frames it (``StreamPeerLink``); the stream only moves bytes. Calls
/// are made from dedicated threads; each direction is used by one thread at a time.
public protocol ByteStream: AnyObject, Sendable {
    /// One receive into `buffer`, waiting for data: the number of bytes read (at least one).
    /// - Throws: ``TransportError`` (``TransportError/closedByPeer`` at a clean end).
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int
    /// Waits up to `milliseconds` for something to receive; false when the time ran out.
    func waitForData(milliseconds: Int32) throws(TransportError) -> Bool
    /// Sends all of `buffers` in order, waiting as long as the peer makes it. `more`: more
    /// data follows at once (a partial packet may wait for it).
    func send(_ buffers: [UnsafeRawBufferPointer], more: Bool) throws(TransportError)
    /// Sends as much of `buffers` as the stream takes now, without waiting: the bytes taken.
    /// The bytes not taken must be the first ones of the next send (a TLS stream may have
    /// encrypted them already, and skips them then).
    func sendWithoutWaiting(_ buffers: [UnsafeRawBufferPointer]) throws(TransportError) -> Int
    /// Ends the sending direction after what was sent; receiving goes on until the peer ends.
    func shutdownSending()
    /// Closes both directions now: a receive or send blocked on the stream returns with an
    /// error. Idempotent.
    func close()
    /// The zero-copy capability of this stream, or nil (a TLS stream has none: its bytes are
    /// encrypted in memory).
    var splicing: (any SplicingStream)? { get }
}

/// A stream whose bytes the kernel moves to and from pipes without copying them (`splice`): a
/// plain TCP socket. A capability, asked for with ``ByteStream/splicing``; never a downcast.
public protocol SplicingStream: Sendable {
    /// Receives the next `count` bytes of the stream into pipes (``SplicedReceive``) after
    /// `prefix` (the part already read into memory); nil, with nothing received, when no pipes
    /// are to be had (the caller receives into memory).
    func receiveSpliced(_ count: Int, prefix: [UInt8]) throws(TransportError) -> SplicedReceive?
    /// Sends `head`, then the held bytes of `data` from their pipe, without copying them.
    func sendSpliced(head: UnsafeRawBufferPointer, _ data: SplicedRead) throws(TransportError)
}

extension ByteStream {
    /// Sends all of `bytes`, waiting as long as the peer makes it.
    public func send(_ bytes: ArraySlice<UInt8>, more: Bool = false) throws(TransportError) {
        try bytes.withUnsafeBytes { buffer in Result { () throws(TransportError) in try send([buffer], more: more) } }.get()
    }

    /// Sends all of `bytes`, waiting as long as the peer makes it.
    public func send(_ bytes: [UInt8], more: Bool = false) throws(TransportError) { try send(bytes[...], more: more) }

    /// Sends as much of `bytes` as the stream takes now, without waiting: the bytes taken.
    public func sendWithoutWaiting(_ bytes: ArraySlice<UInt8>) throws(TransportError) -> Int {
        try bytes.withUnsafeBytes { buffer in Result { () throws(TransportError) in try sendWithoutWaiting([buffer]) } }.get()
    }

    /// Receives exactly `buffer.count` bytes.
    public func receiveExactly(_ buffer: UnsafeMutableRawBufferPointer) throws(TransportError) {
        var done = 0
        while done < buffer.count {
            done += try receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
        }
    }
}
