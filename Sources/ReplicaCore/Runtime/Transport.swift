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

extension Transport {
    /// Transports that cannot keep a link past stopping simply stop.
    public func stopConnecting() { stop() }
}

extension PeerLink {
    /// Transports without an orderly shutdown simply close.
    public func closeGracefully(timeout: Double) { close() }

    /// Transports without gather writes send the frames one by one.
    public func send(_ frames: [Frame], volume: UInt16) throws(TransportError) {
        for frame in frames { try send(frame, volume: volume) }
    }

    /// Transports that cannot send held data from where it is copy it into the frame.
    public func send(_ frame: Frame, appending data: HeldData, volume: UInt16) throws(TransportError) {
        try send(data.copied(into: frame), volume: volume)
    }

    /// Transports that cannot tell whether a send would wait send everything now.
    public func sendWithoutWaiting(_ frames: [Frame], volume: UInt16) throws(TransportError) -> PendingSend? {
        try send(frames, volume: volume)
        return nil
    }
}

extension PeerLinkHandler {
    /// Handlers without batches take the frames one by one, held data copied into its frame
    /// (a failure to take it ends the link).
    public func received(_ frames: [ReceivedFrame], on link: any PeerLink) {
        for received in frames {
            guard let held = received.held else {
                self.received(received.frame, volume: 0, on: link)
                continue
            }
            do {
                self.received(try held.copied(into: received.frame), volume: 0, on: link)
            } catch {
                link.close()
                return
            }
        }
    }
}

/// A frame as a transport delivers it: its data in the frame, or (`held`) kept out of memory —
/// a large resync block spliced from the socket (``SplicedReceive``), the frame's own data
/// then empty.
public struct ReceivedFrame: Sendable {
    /// The frame.
    public var frame: Frame
    /// The frame's data, when the transport kept it out of memory.
    public var held: HeldData?

    /// A received frame.
    public init(_ frame: Frame, held: HeldData? = nil) {
        self.frame = frame
        self.held = held
    }
}

/// An established link to a peer: two ordered channels (data and meta) that carry frames.
///
/// Over TCP a link is two connections; over InfiniBand verbs it is two reliable-connected
/// queue pairs. `send` routes each frame to its channel (``FrameType/channel``) and keeps the
/// order of frames within a channel. Implementations must be safe to call from any thread.
public protocol PeerLink: AnyObject, Sendable {
    /// Sends a frame about `volume` on the frame's channel.
    func send(_ frame: Frame, volume: UInt16) throws(TransportError)
    /// Sends frames about `volume`, each on its channel, in order within each channel —
    /// together (one gather write per channel) where the transport can.
    func send(_ frames: [Frame], volume: UInt16) throws(TransportError)
    /// Sends as much of `frames` (all of one channel) as that channel takes at once, without
    /// waiting for the peer. Returns what is left as work that sends it (waiting), which the
    /// caller must run before any later frame of that channel; nil when everything went out.
    func sendWithoutWaiting(_ frames: [Frame], volume: UInt16) throws(TransportError) -> PendingSend?
    /// Sends `frame` (whose own data is empty) with `data` as its data, on the frame's
    /// channel in order with the frames sent before and after it, waiting as long as the peer
    /// makes it. A transport over sockets sends spliced data without copying it
    /// (``SplicedRead/send(to:more:)``); the others copy it (``HeldDataStorage/takeBytes()``).
    func send(_ frame: Frame, appending data: HeldData, volume: UInt16) throws(TransportError)
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

/// The rest of a send that did not wait: sends it, waiting as long as the peer makes it.
public typealias PendingSend = @Sendable () throws(TransportError) -> Void

/// Receives what a transport learns about its link.
public protocol PeerLinkHandler: AnyObject, Sendable {
    /// A link to the peer is established (both channels up and classified).
    func linkEstablished(_ link: any PeerLink)
    /// A frame arrived from the peer.
    func received(_ frame: Frame, volume: UInt16, on link: any PeerLink)
    /// Frames arrived from the peer together (in order, on one channel); handled in one go.
    func received(_ frames: [ReceivedFrame], on link: any PeerLink)
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

extension HeldData {
    /// `frame` with these bytes copied into it as its data (for a transport that cannot send
    /// them from where they are); a failure to take them names the frame.
    public func copied(into frame: Frame) throws(TransportError) -> Frame {
        do {
            return frame.replacingData(try storage.takeBytes())
        } catch {
            throw TransportError("\(frame.type) frame: \(error)")
        }
    }
}
