import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Resync pacing")
struct ResyncPacingTests {
    func settings(_ body: (inout ResyncRateController.Settings) -> Void) -> ResyncRateController.Settings {
        var settings = ResyncRateController.Settings()
        body(&settings)
        return settings
    }

    @Test func fixedRateRequestsResyncRateTimesAStep() {
        // c-plan-ahead 0: resync-rate 40M asks for 4 MiB every 100 ms, whatever arrived.
        var controller = ResyncRateController(settings: settings { $0.planAheadSteps = 0; $0.resyncRateKiB = 40 << 10 })
        #expect(controller.step(receivedBytes: 0, applicationBusy: false) == 4 << 20)
        #expect(controller.step(receivedBytes: 123 << 10, applicationBusy: false) == 4 << 20)
        #expect(controller.wantKiBPerSecond == 40 << 10)
    }

    @Test func dynamicControllerStartsFromResyncRateSpreadOverThePlan() {
        // Start (nothing in flight, nothing arrived): want = resync-rate × c-plan-ahead; one
        // plan slot of it in the first step.
        var controller = ResyncRateController(settings: settings { $0.resyncRateKiB = 10 << 10; $0.planAheadSteps = 20; $0.maxRateKiB = 0 })
        let wantSectors: Int64 = (10 << 10) * 2 / 10 * 20
        #expect(controller.step(receivedBytes: 0, applicationBusy: false) == wantSectors / 20 * 512)
    }

    @Test func fillTargetIsHeldInSteadyState() {
        // With the fill target in flight and the plan settled, each step asks for what arrived.
        var controller = ResyncRateController(settings: settings { $0.fillTargetSectors = 2048; $0.maxRateKiB = 0; $0.planAheadSteps = 10 })
        var inFlight: Int64 = 0
        var request: Int64 = 0
        var arrived: Int64 = 0
        for _ in 0..<400 {
            // Half of what is in flight arrives each step (a pipe twice as deep as a step).
            arrived = inFlight / 2 / 512 * 512
            controller.answered(bytes: arrived)
            inFlight -= arrived
            request = controller.step(receivedBytes: arrived, applicationBusy: false)
            controller.requested(bytes: request)
            inFlight += request
        }
        // What is in flight when the step decides is the fill target; the step asks for what arrived.
        let inFlightAtStep = (inFlight - request) / 512
        #expect(abs(inFlightAtStep - 2048) <= 64, "in flight \(inFlightAtStep) sectors at the step, target 2048")
        #expect(abs(request - arrived) <= 64 * 512)
    }

    @Test func delayTargetGrowsTheRateWithWhatArrives() {
        var controller = ResyncRateController(settings: settings { $0.fillTargetSectors = 0; $0.delayTargetSteps = 10; $0.maxRateKiB = 0 })
        var previous: Int64 = controller.step(receivedBytes: 0, applicationBusy: false)
        var grew = false
        for _ in 0..<20 {
            // Everything requested arrives within the step (a fast link).
            let next = controller.step(receivedBytes: previous, applicationBusy: false)
            if next > previous { grew = true }
            previous = next
        }
        #expect(grew)
    }

    @Test func maxRateCapsEveryStep() {
        var controller = ResyncRateController(settings: settings { $0.resyncRateKiB = 1 << 20; $0.maxRateKiB = 1024; $0.fillTargetSectors = 1 << 20 })
        for _ in 0..<50 {
            let bytes = controller.step(receivedBytes: 8 << 20, applicationBusy: false)
            #expect(bytes <= 1024 * 1024 / 10 + 511)
        }
    }

    @Test func minRateYieldsToApplicationIOOnlyAboveIt() {
        var fast = ResyncRateController(settings: settings { $0.planAheadSteps = 0; $0.resyncRateKiB = 10 << 10; $0.minRateKiB = 1024 })
        _ = fast.step(receivedBytes: 1 << 20, applicationBusy: false)  // 10 MiB/s recently
        #expect(fast.step(receivedBytes: 1 << 20, applicationBusy: true) == 0, "above c-min-rate: the resync waits")
        #expect(fast.step(receivedBytes: 0, applicationBusy: false) > 0, "no application I/O: the resync goes on")

        var slow = ResyncRateController(settings: settings { $0.planAheadSteps = 0; $0.resyncRateKiB = 10 << 10; $0.minRateKiB = 100 << 10 })
        _ = slow.step(receivedBytes: 1 << 20, applicationBusy: false)
        #expect(slow.step(receivedBytes: 1 << 20, applicationBusy: true) > 0, "below c-min-rate: never throttled")

        var never = ResyncRateController(settings: settings { $0.planAheadSteps = 0; $0.resyncRateKiB = 10 << 10; $0.minRateKiB = 0 })
        _ = never.step(receivedBytes: 1 << 20, applicationBusy: false)
        #expect(never.step(receivedBytes: 1 << 20, applicationBusy: true) > 0, "c-min-rate 0: never throttled")
    }

    @Test func settingsComeFromTheResourceFile() throws {
        let text = """
            resource r0 {
              net { max-buffers 8000; }
              disk { resync-rate 40M; c-plan-ahead 5; c-fill-target 1M; c-delay-target 7; c-max-rate 200M; c-min-rate 4M; }
              device minor 0; meta-disk internal;
              on a { disk /dev/a; address 127.0.0.1:7789; }
              on b { disk /dev/b; address 127.0.0.2:7789; }
            }
            """
        let configuration = try ConfigBuilder.load(text: text, file: "r0.res")
        let resource = try #require(configuration.resources.first)
        let volume = try #require(try NodeResolver(nodeName: "a").volumes(of: resource, in: configuration).first)
        let settings = ResyncRateController.Settings(volume: volume, maxBuffers: "8000")
        #expect(settings.resyncRateKiB == 40 << 10)
        #expect(settings.planAheadSteps == 5)
        #expect(settings.fillTargetSectors == 2048)
        #expect(settings.delayTargetSteps == 7)
        #expect(settings.maxRateKiB == 200 << 10)
        #expect(settings.minRateKiB == 4 << 10)
        #expect(settings.maxBuffersPages == 8000)
        #expect(ResyncRateController(settings: settings).inFlightLimitBytes == 8000 * 4096 / 2)
    }

    @Test func theEngineRequestsNoMoreThanEachStepAllows() throws {
        // resync-rate 400K with c-plan-ahead 0: 40 KiB (10 bits) per 100 ms step.
        var configuration = EngineConfiguration()
        configuration.resyncPacing.planAheadSteps = 0
        configuration.resyncPacing.resyncRateKiB = 400
        var pair = try InMemoryCluster(diskSize: 2 << 20, configuration: configuration, seed: 3)
        try pair.preload(node: 0, offset: 0, bytes: [UInt8](repeating: 0xA5, count: 2 << 20))
        try pair.connect()
        try pair.run()
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        var steps = 0
        var previous = Int64.max
        while pair.nodes[1].engine.state.connection != .connected || steps == 0 {
            while try pair.step() {}
            let left = pair.nodes[1].engine.bitmap.setCount
            if pair.nodes[1].engine.state.connection == .syncTarget {
                #expect(previous == .max || previous - left <= 10, "step \(steps) synced \(previous - left) bits, budget 10")
                previous = left
                try pair.fireTimers(1)
            }
            steps += 1
            if steps > 1000 { break }
        }
        #expect(pair.nodes[1].engine.state.disk == .upToDate)
        // 2 MiB minus the meta-data area at 40 KiB per step: about 50 steps, not one burst.
        #expect(steps >= 45, "synced in \(steps) steps")
        #expect(try pair.data(0) == pair.data(1))
    }
}
