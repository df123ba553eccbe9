/// An ordered, reliable channel of whole messages with credit-based flow control: one channel
/// of a link over InfiniBand verbs (an RC queue pair, SEND into receive buffers the peer
/// posted) or in memory (``InMemoryMessageChannel``). A message is sent only while the peer has
/// a receive buffer for it — a credit; the receiver gives the credit back when it has taken
/// the message. The link above puts one frame in each message (``MessagePeerLink``).
public protocol MessageChannel: AnyObject, Sendable {
    /// The largest message the channel carries (a frame header and its payload).
    var maximumMessageSize: Int { get }
    /// Sends `message` if the peer has a receive buffer for it; false, with nothing sent,
    /// when it has none (no credit).
    /// - Throws: ``TransportError`` when the channel is closed or failed.
    func trySend(_ message: [UInt8]) throws(TransportError) -> Bool
    /// Waits until a credit is available (or `milliseconds` passed: false).
    /// - Throws: ``TransportError`` when the channel closes meanwhile.
    func waitForCredit(milliseconds: Int32) throws(TransportError) -> Bool
    /// The next message, waiting up to `milliseconds` for it (-1: as long as it takes); nil
    /// when none came in time. Taking it gives its receive buffer back to the peer (a credit).
    /// - Throws: ``TransportError`` (``TransportError/closedByPeer`` once the peer ended the
    ///   channel and every message before the end was taken).
    func receive(milliseconds: Int32) throws(TransportError) -> [UInt8]?
    /// Ends the sending direction after the messages sent; the peer receives them, then the end.
    func shutdownSending()
    /// Closes the channel now: a wait on it returns with an error. Idempotent.
    func close()
}
