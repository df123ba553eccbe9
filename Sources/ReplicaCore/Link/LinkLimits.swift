/// How much a node lets wait on its way to the peer (DESIGN.md principle 6): the bounds of
/// the runtime's back-pressure.
///
/// - `max-buffers` (net, pages of 4 KiB; DRBD's default 2048 = 8 MiB): the bytes a link may
///   hold queued toward the peer. While the queue is at the bound, new application requests
///   wait (they are held, never dropped) and `status` says `congested:yes`; they go on once a
///   send brings it below half the bound.
/// - `max-io-depth` (options, DRBD 9's; default 8000): the application requests a resource
///   has in the engine at once; more wait the same way.
public struct LinkLimits: Sendable, Equatable {
    /// Bytes queued toward the peer at which application requests wait.
    public var queueBytes: Int
    /// Application requests in the engine at once.
    public var ioDepth: Int

    /// DRBD's defaults: `max-buffers 2048`, `max-io-depth 8000`.
    public init(queueBytes: Int = 2048 * 4096, ioDepth: Int = 8000) {
        self.queueBytes = queueBytes
        self.ioDepth = ioDepth
    }

    /// The limits the resource's `net` options (`max-buffers`) and resource options
    /// (`max-io-depth`) give.
    public init(net: [OptionSetting], resourceOptions: [OptionSetting] = []) {
        self.init()
        if let pages = net.last(where: { $0.name == "max-buffers" }).flatMap({ OptionValueParser.number($0.value, unitBytes: 1) }) {
            queueBytes = Int(pages) * 4096
        }
        if let depth = resourceOptions.last(where: { $0.name == "max-io-depth" }).flatMap({ OptionValueParser.number($0.value, unitBytes: 1) }) {
            ioDepth = Int(clamping: depth)
        }
    }

    /// The queue size below which waiting requests go on again (half the bound).
    public var drainMarkBytes: Int { queueBytes / 2 }
}
