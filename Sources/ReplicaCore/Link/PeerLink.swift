/// Why a transport failed or closed a link.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What happened, with the system error where there is one.
    public var description: String

    /// Creates an error.
    public init(_ description: String) { self.description = description }
}

extension TransportError {
    /// The message of a clean end of stream (the peer closed its side).
    public static let closedByPeer = "connection closed by peer"

    /// True for a clean end of stream.
    public var isClosedByPeer: Bool { description == Self.closedByPeer }
}

/// A frame for the peer, about one volume, with its data kept out of memory where the
/// runtime holds it (`held`: the frame's own data is empty then).
public struct OutgoingFrame: Sendable {
    /// The frame.
    public var frame: Frame
    /// The volume it is about (0 for the frames of the connection itself).
    public var volume: UInt16
    /// Its data, when held out of memory.
    public var held: (any HeldDataStorage)?

    /// A frame about `volume`.
    public init(_ frame: Frame, volume: UInt16, held: (any HeldDataStorage)? = nil) {
        self.frame = frame
        self.volume = volume
        self.held = held
    }
}

/// A frame as a link delivers it: the volume it is about, and its data in the frame or
/// (`held`) kept out of memory — a large block spliced from a socket, the frame's own data
/// then empty.
public struct ReceivedFrame: Sendable {
    /// The frame.
    public var frame: Frame
    /// The volume the frame is about.
    public var volume: UInt16
    /// The frame's data, when the link kept it out of memory.
    public var held: (any HeldDataStorage)?

    /// A received frame.
    public init(_ frame: Frame, volume: UInt16, held: (any HeldDataStorage)? = nil) {
        self.frame = frame
        self.volume = volume
        self.held = held
    }
}

/// An established link to the peer: two ordered channels (data and meta) that carry frames,
/// whatever carries the channels (two TCP connections, TLS, two RDMA queue pairs, memory).
///
/// Sending never waits: frames go out at once where the channel takes them, else into the
/// channel's queue, sent in order by the link's sender. The queue is bounded from above by the
/// runtime, which holds application requests back while ``queuedBytes`` is at its limit
/// (``PeerLinkHandler/linkDrained(_:)`` says when it went below). Received frames reach the
/// handler in order per channel, in batches of those that arrived together.
public protocol PeerLink: AnyObject, Sendable {
    /// Queues `frames` (each on its frame type's channel, in order within a channel) and sends
    /// what the channel takes now; never waits.
    func send(_ frames: [OutgoingFrame])
    /// Bytes queued toward the peer and not yet handed to the channel.
    var queuedBytes: Int { get }
    /// Closes both channels at once; the handler then sees ``PeerLinkHandler/linkLost(_:reason:)`` once.
    func close(reason: String)
    /// Ends both channels in order: what was queued is sent, the peer sees the end after it;
    /// waits up to `timeout` seconds for that and for the peer to end its side, then closes.
    func closeGracefully(timeout: Double)
    /// Waits until the link's threads have ended (after it was closed).
    func join()
    /// True for the side that accepted the meta channel (it holds RESOLVE_CONFLICTS).
    var resolveConflicts: Bool { get }
    /// A description of the endpoints, for status and logs.
    var endpoints: String { get }
}

/// Receives what a link learns.
public protocol PeerLinkHandler: AnyObject, Sendable {
    /// A link to the peer is established (both channels up and classified).
    func linkEstablished(_ link: any PeerLink)
    /// Frames arrived from the peer together (in order, on one channel).
    func received(_ frames: [ReceivedFrame], on link: any PeerLink)
    /// The link's queues went below their low mark: held-back requests may go on.
    func linkDrained(_ link: any PeerLink)
    /// The link ended: closed, a channel error, or a frame that broke the protocol (`reason`).
    func linkLost(_ link: any PeerLink, reason: String)
    /// The transport refused the peer for good before a link was made (authentication failed)
    /// and stopped connecting: the resource goes StandAlone, `reason` says why.
    func connectionRefused(reason: String)
    /// An attempt to make a link failed (`reason`); the transport tries again after
    /// `connect-int`. Told on every failed attempt: a handler that logs it logs a new reason
    /// once, not every attempt.
    func connectionAttemptFailed(reason: String)
}

/// Establishes links between this node and one peer: listens and connects as the
/// configuration says, and hands each established link to the handler.
public protocol Transport: AnyObject, Sendable {
    /// The transport's name in `net { transport ...; }` and in status (`tcp`, `rdma`, `memory`).
    var kind: String { get }
    /// Starts listening and connecting (every `connect-int` until a link is up). Not from
    /// inside an engine step: it may wait for the threads of an earlier start to end.
    func start(handler: any PeerLinkHandler) throws(TransportError)
    /// Stops listening and connecting, closes the current link, and waits for the
    /// transport's threads to end. Not from inside an engine step (a link's receive thread
    /// may be waiting for the step).
    func stop()
    /// Stops listening and connecting without waiting (callable from an engine step), leaving
    /// the current link to its owner, who closes it in order
    /// (``PeerLink/closeGracefully(timeout:)``).
    func stopConnecting()
    /// The last reason a connection attempt failed (for status), nil when none did.
    var lastFailure: String? { get }
    /// True when the transport encrypts the link (TLS): `tls:yes` in status.
    var isEncrypted: Bool { get }
}

extension Transport {
    /// Transports encrypt nothing unless they say so.
    public var isEncrypted: Bool { false }
}
