/// How much resync data the SyncTarget asks for in each 100 ms step: DRBD 8.4's fixed rate
/// (`c-plan-ahead 0`: `resync-rate` per second) or its dynamic controller (reference 6.2),
/// which keeps `c-fill-target` sectors in flight (or, with `c-fill-target 0`, enough to
/// reach `c-delay-target`), spreads each correction over `c-plan-ahead` steps and never
/// asks for more than `c-max-rate`. `c-min-rate` lets application I/O slow the resync
/// down, but never below that rate. Pure: the engine feeds it what arrived and reads back
/// what to request.
public struct ResyncRateController: Sendable, Equatable {
    /// The options it runs with, in DRBD's units.
    public struct Settings: Sendable, Equatable {
        /// `resync-rate` in KiB/s: the fixed rate, and the start value of the dynamic controller.
        public var resyncRateKiB: Int64 = 250
        /// `c-plan-ahead` in 0.1 s steps; 0 selects the fixed rate.
        public var planAheadSteps = 20
        /// `c-fill-target` in 512-byte sectors; 0 selects the delay target.
        public var fillTargetSectors: Int64 = 100
        /// `c-delay-target` in 0.1 s steps.
        public var delayTargetSteps: Int64 = 10
        /// `c-max-rate` in KiB/s; 0 means no cap.
        public var maxRateKiB: Int64 = 102_400
        /// `c-min-rate` in KiB/s; 0 means application I/O never slows the resync.
        public var minRateKiB: Int64 = 250
        /// `max-buffers` in 4 KiB pages: at most half of them are requested at once.
        public var maxBuffersPages: Int64 = 2048

        /// DRBD 8.4's defaults.
        public init() {}
    }

    /// A step lasts 100 ms (DRBD's SLEEP_TIME).
    public static let stepMilliseconds = 100
    /// Steps over which the recent resync speed is averaged for `c-min-rate` (~6 s).
    static let speedWindowSteps = 60

    /// The settings.
    public var settings: Settings
    /// Sectors requested and not yet received.
    public private(set) var inFlightSectors: Int64 = 0
    /// The plan: corrections still to be applied, oldest first.
    private var plan: [Int64]
    private var planTotal: Int64 = 0
    /// Sectors received per step, most recent last (for the `c-min-rate` speed).
    private var recentSteps: [Int64] = []
    /// Sectors the last step decided to request (DRBD's `c_sync_rate` is this × 10 per second).
    public private(set) var lastStepSectors: Int64 = 0

    /// A controller at the start of a resync.
    public init(settings: Settings) {
        self.settings = settings
        plan = Array(repeating: 0, count: max(settings.planAheadSteps, 1))
    }

    /// Most bytes in flight at once: half of `max-buffers`.
    public var inFlightLimitBytes: Int64 { max(settings.maxBuffersPages, 32) * 4096 / 2 }

    /// What the controller currently wants, in KiB/s (shown as `want:` in `/proc/drbd`).
    public var wantKiBPerSecond: Int64 { lastStepSectors / 2 * 10 }

    /// Records that `bytes` were requested.
    public mutating func requested(bytes: Int64) { inFlightSectors += bytes / 512 }

    /// Records that a request of `bytes` was answered (data written or refused): no longer in flight.
    public mutating func answered(bytes: Int64) { inFlightSectors = max(0, inFlightSectors - bytes / 512) }

    /// One 100 ms step: `receivedBytes` arrived since the previous step; `applicationBusy`
    /// when application I/O competed with the resync in that step. Returns how many bytes
    /// to request in this step.
    public mutating func step(receivedBytes: Int64, applicationBusy: Bool) -> Int64 {
        let sectorsIn = receivedBytes / 512
        recentSteps.append(sectorsIn)
        if recentSteps.count > Self.speedWindowSteps { recentSteps.removeFirst(recentSteps.count - Self.speedWindowSteps) }
        var sectors: Int64
        if settings.planAheadSteps <= 0 {
            sectors = settings.resyncRateKiB * 2 / 10
        } else {
            sectors = dynamicStep(sectorsIn: sectorsIn)
        }
        if applicationBusy && throttledByApplication { sectors = 0 }
        lastStepSectors = sectors
        return sectors * 512
    }

    /// Reference 6.2: the correction towards the fill (or delay) target spread over the plan.
    private mutating func dynamicStep(sectorsIn: Int64) -> Int64 {
        let steps = Int64(plan.count)
        let want: Int64
        if inFlightSectors + sectorsIn == 0 {
            want = settings.resyncRateKiB * 2 / 10 * steps
        } else if settings.fillTargetSectors > 0 {
            want = settings.fillTargetSectors
        } else {
            want = sectorsIn * settings.delayTargetSteps
        }
        let correction = want - inFlightSectors - planTotal
        let perStep = correction / steps
        for index in plan.indices { plan[index] += perStep }
        planTotal += perStep * steps
        let current = plan.removeFirst()
        plan.append(0)
        planTotal -= current
        var sectors = max(0, sectorsIn + current)
        if settings.maxRateKiB > 0 { sectors = min(sectors, settings.maxRateKiB * 2 / 10) }
        return sectors
    }

    /// `c-min-rate`: with application I/O competing, the resync waits a step while its recent
    /// speed is above the minimum.
    private var throttledByApplication: Bool {
        guard settings.minRateKiB > 0, !recentSteps.isEmpty else { return false }
        let kibPerSecond = recentSteps.reduce(0, +) / 2 * 10 / Int64(recentSteps.count)
        return kibPerSecond > settings.minRateKiB
    }
}
