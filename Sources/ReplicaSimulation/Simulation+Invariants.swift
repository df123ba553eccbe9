#if canImport(Glibc)
import Glibc
#endif
import ReplicaCore

/// The invariants checked while a simulation runs and at its end.
extension Simulation {
    // MARK: - Invariants

    func settled() -> Bool {
        guard operationsLeft == 0, pending.isEmpty, connected, queueIsQuietEnough else { return false }
        return nodes.allSatisfy { node in
            guard let state = node.engine?.state else { return false }
            return state.connection == .connected && state.disk == .upToDate && state.peerDisk == .upToDate && node.engine!.inFlight.local == 0
                && node.engine!.bitmap.setCount == 0
        }
    }

    var queueIsQuietEnough: Bool { framesInFlight == 0 && ioInFlight == 0 }

    /// Wherever the two disks differ while connected and quiet, a bitmap bit must say so
    /// (checked at most every 50 ms of virtual time: it compares both disks).
    func checkNoSilentDivergence() {
        guard now - lastDivergenceCheck >= 50_000, connected, pending.isEmpty, queueIsQuietEnough,
              let a = nodes[0].engine, let b = nodes[1].engine,
              a.state.connection == .connected, b.state.connection == .connected,
              a.inFlight.local == 0, b.inFlight.local == 0 else { return }
        lastDivergenceCheck = now
        let left = nodes[0].disk.contents(0..<dataSize), right = nodes[1].disk.contents(0..<dataSize)
        for block in stride(from: 0, to: Int(dataSize), by: 4096) where !sameBytes(left, block, right, block, 4096) {
            let bit = Int64(block / 4096)
            if !a.bitmap.isSet(bit), !b.bitmap.isSet(bit) {
                return fail("the disks differ at 4 KiB block \(bit) while Connected, and neither bitmap marks it")
            }
        }
    }

    func finalChecks() throws {
        guard settled() else { return fail("the cluster did not settle: \(nodes.map { $0.engine.map { "\($0.state)" } ?? "down" })") }
        let a = nodes[0].disk.contents(0..<dataSize), b = nodes[1].disk.contents(0..<dataSize)
        for block in stride(from: 0, to: Int(dataSize), by: 4096) where !sameBytes(a, block, b, block, 4096) {
            return fail("both nodes UpToDate but their data differs (first at 4 KiB block \(block / 4096))")
        }
        for block in stride(from: 0, to: Int(dataSize), by: 4096) {
            let range = Int64(block)..<Int64(block + 4096)
            guard !uncertain.contains(where: { $0.overlaps(range) }) else { continue }
            if !sameBytes(a, block, model, block, 4096) {
                return fail("an acknowledged write is missing at 4 KiB block \(block / 4096) on the UpToDate nodes")
            }
        }
    }

    /// `count` bytes of `a` at `i` equal those of `b` at `j` (memcmp: this runs millions of times).
    func sameBytes(_ a: [UInt8], _ i: Int, _ b: [UInt8], _ j: Int, _ count: Int) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress! + i, y.baseAddress! + j, count) == 0 } }
    }

    func fail(_ message: String) {
        guard violation == nil else { return }
        violation = message
        note("VIOLATION: \(message)")
    }

    func note(_ line: String, fault: Bool = false) {
        let milliseconds = String(now / 1000), fraction = String(now % 1000)
        let stamped = String(repeating: " ", count: max(0, 7 - milliseconds.count)) + milliseconds + "."
            + String(repeating: "0", count: 3 - fraction.count) + fraction + " ms  " + line
        if fault { faultLog.append(stamped) }
        trace.append(stamped)
        if trace.count > options.traceLines { trace.removeFirst(trace.count - options.traceLines) }
    }
}
