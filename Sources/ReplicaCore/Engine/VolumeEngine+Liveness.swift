/// Liveness: a ping on the meta channel every `ping-int`, and a peer that does not answer
/// within `ping-timeout` is declared lost (reference 5.11), so a frozen or unplugged peer is
/// noticed in bounded time even when TCP would wait much longer.
extension VolumeEngine {
    mutating func startPinging(_ effects: inout [EngineEffect]) {
        connectionGeneration &+= 1
        pingOutstanding = false
        effects.append(.armTimer(.ping(generation: connectionGeneration), milliseconds: configuration.pingIntervalMilliseconds))
    }

    mutating func timerFired(_ timer: EngineTimer, _ effects: inout [EngineEffect]) {
        guard state.connection >= .wfReportParams else { return }
        switch timer {
        case .ping(let generation):
            guard generation == connectionGeneration else { return }
            if !pingOutstanding {
                pingOutstanding = true
                effects.append(.send(.ping))
                effects.append(.armTimer(.pingTimeout(generation: generation), milliseconds: configuration.pingTimeoutMilliseconds))
            }
            effects.append(.armTimer(.ping(generation: generation), milliseconds: configuration.pingIntervalMilliseconds))
        case .pingTimeout(let generation):
            guard generation == connectionGeneration, pingOutstanding else { return }
            effects.append(.log("PingAck did not arrive in time."))
            effects.append(.closeConnection(reason: "PingAck did not arrive in time", standAlone: false))
        case .resync(let generation):
            guard generation == connectionGeneration, state.connection == .syncTarget || state.connection == .pausedSyncT else { return }
            resyncTick(&effects)
            effects.append(.armTimer(timer, milliseconds: configuration.resyncTickMilliseconds))
        }
    }

    mutating func receivedPingAck() {
        pingOutstanding = false
    }
}
