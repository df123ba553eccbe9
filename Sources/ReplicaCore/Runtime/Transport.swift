/// Why a transport failed or closed a link.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What happened, with the system error where there is one.
    public var description: String

    /// Creates an error.
    public init(_ description: String) { self.description = description }
}

extension Transport {
    /// Transports that cannot keep a link past stopping simply stop.
    public func stopConnecting() { stop() }
}

extension PeerLink {
    /// Transports without an orderly shutdown simply close.
    public func closeGracefully(timeout: Double) { close() }
}

/// An established link to a peer: two ordered channels (data and meta) that carry frames.
///
/// Over TCP a link is two connections; over InfiniBand verbs it is two reliable-connected
/// queue pairs. `send` routes each frame to its channel (``FrameType/channel``) and keeps the
/// order of frames within a channel. Implementations must be safe to call from any thread.
public protocol PeerLink: AnyObject, Sendable {
    /// Sends a frame about `volume` on the frame's channel.
    func send(_ frame: Frame, volume: UInt16) throws(TransportError)
    /// Closes both channels; the handler then sees ``PeerLinkHandler/linkLost(_:reason:)`` once.
    func close()
    /// Ends both channels in order: what was sent is delivered, the peer sees the end after
    /// it; waits up to `timeout` seconds for the peer to end its side, then closes.
    func closeGracefully(timeout: Double)
    /// True for the side that accepted the meta channel (it holds RESOLVE_CONFLICTS).
    var resolveConflicts: Bool { get }
    /// A description of the endpoints, for status and logs.
    var endpoints: String { get }
}

/// Receives what a transport learns about its link.
public protocol PeerLinkHandler: AnyObject, Sendable {
    /// A link to the peer is established (both channels up and classified).
    func linkEstablished(_ link: any PeerLink)
    /// A frame arrived from the peer.
    func received(_ frame: Frame, volume: UInt16, on link: any PeerLink)
    /// The link ended: closed, a socket error, or a frame that broke the protocol (`reason`).
    func linkLost(_ link: any PeerLink, reason: String)
}

/// Establishes links between this node and one peer: listens and connects as the
/// configuration says, and hands each established link to the handler.
public protocol Transport: AnyObject, Sendable {
    /// Starts listening and connecting (every `connect-int` until a link is up).
    func start(handler: any PeerLinkHandler) throws(TransportError)
    /// Stops listening and connecting and closes the current link.
    func stop()
    /// Stops listening and connecting, leaving the current link to its owner, who closes it
    /// in order (``PeerLink/closeGracefully(timeout:)``).
    func stopConnecting()
}
