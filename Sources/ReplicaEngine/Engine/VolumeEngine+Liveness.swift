/// Liveness: a ping on the meta channel every `ping-int`, and a peer that does not answer
/// within `ping-timeout` is declared lost (reference 5.11), so a frozen or unplugged peer is
/// noticed in bounded time even when TCP would wait much longer; and a peer that answers
/// pings but leaves a write or barrier unanswered for `ko-count` × `timeout` is dropped.
extension VolumeEngine {
    mutating func startPinging(_ effects: inout [EngineEffect]) {
        connectionGeneration &+= 1
        pingOutstanding = false
        effects.append(.armTimer(.ping(generation: connectionGeneration), milliseconds: configuration.pingIntervalMilliseconds))
        if configuration.koCount > 0 {
            effects.append(.armTimer(.requestTimeout(generation: connectionGeneration), milliseconds: configuration.timeoutMilliseconds))
        }
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
            lossCause = .networkFailure
            effects.append(.closeConnection(reason: "PingAck did not arrive in time", standAlone: false))
        case .requestTimeout(let generation):
            guard generation == connectionGeneration else { return }
            writes.requestTick += 1
            let limit = UInt64(configuration.koCount)
            let overdueWrite = writes.pending.values.contains { $0.networkPending && writes.requestTick - $0.sentTick >= limit }
            let overdueBarrier = writes.barrierSentTick.contains { epoch, tick in
                writes.transferLog[epoch] != nil && writes.requestTick - tick >= limit
            }
            if overdueWrite || overdueBarrier {
                let seconds = Double(configuration.timeoutMilliseconds * configuration.koCount) / 1000
                effects.append(.log("Remote failed to finish a request within ko-count * timeout (\(seconds) s)"))
                lossCause = .timeout
                effects.append(.closeConnection(reason: "Remote failed to finish a request within ko-count * timeout", standAlone: false))
                return
            }
            effects.append(.armTimer(timer, milliseconds: configuration.timeoutMilliseconds))
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
