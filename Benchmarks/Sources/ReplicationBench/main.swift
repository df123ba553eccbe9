// Replicated-write and full-sync throughput through the library API over loopback TCP.
//
//   replication-bench [--dir /dev/shm] [--sync-size-mib 1024] [--write-mib 1024]
//                     [--scattered-blocks 3000] [--only sync|outage|scattered|writes]
//                     [--write-size 4096] [--depth 8]   (writes of that size / at that depth only)
//
// Prints one line per measurement: "name value unit". `replication-compare.sh` runs iperf3
// on loopback in the same run and prints ratios against it.
import Foundation
import ReplicaCore
import ReplicaTransportTCP

struct Options {
    var directory = "/dev/shm"
    var syncMiB = 1024
    var writeMiB = 1024
    /// 4 KiB blocks written apart on a 1 TiB disk for the scattered resync.
    var scatteredBlocks = 3000
    /// Only this measurement: "sync", "outage", "scattered" or "writes".
    var only: String?
    /// Extra `disk` options (resync pacing) for the measurement.
    var diskOptions = "c-plan-ahead 0; resync-rate 4G;"
    /// Only writes of this size (bytes), and only at this queue depth.
    var writeSize: Int?
    var depth: Int?
    init() {
        var iterator = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--dir": directory = iterator.next() ?? directory
            case "--sync-size-mib": syncMiB = Int(iterator.next() ?? "") ?? syncMiB
            case "--write-mib": writeMiB = Int(iterator.next() ?? "") ?? writeMiB
            case "--scattered-blocks": scatteredBlocks = Int(iterator.next() ?? "") ?? scatteredBlocks
            case "--only": only = iterator.next()
            case "--disk-options": diskOptions = iterator.next() ?? diskOptions
            case "--write-size": writeSize = Int(iterator.next() ?? "")
            case "--depth": depth = Int(iterator.next() ?? "")
            default: break
            }
        }
    }
}

// As the node daemon does (docs/PERFORMANCE.md): one malloc arena, set before threads exist.
AllocatorTuning.useSingleArena()
let options = Options()
let base = 30_000 + Int.random(in: 0..<20_000)
nonisolated(unsafe) var pairIndex = 0

func makePair(protocolName: String, diskMiB: Int, fill: Bool, writeEveryBlock: Bool = true) throws -> (ReplicatedVolume, ReplicatedVolume, String) {
    pairIndex += 1
    let directory = options.directory + "/replica-bench-\(getpid())-\(pairIndex)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for name in ["a", "b"] {
        let path = "\(directory)/\(name).img"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(diskMiB + 2) << 20)
        try handle.close()
        try MetadataDevice.internalMetadata(try FileBlockTarget(path: path), name: path).create(force: true)
    }
    // Every block of both disks is written before the measurement, as a disk's blocks exist:
    // a sparse tmpfs file would add page allocation to every first write. Node a gets a
    // pattern when `fill` (the data the full sync copies), zeroes otherwise; node b zeroes.
    for name in ["a", "b"] where writeEveryBlock {
        let disk = try FileBlockTarget(path: "\(directory)/\(name).img")
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for index in 0..<diskMiB {
            if fill && name == "a" {
                chunk.withUnsafeMutableBytes { raw in for i in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: UInt64(index &* 7919 &+ i), toByteOffset: i, as: UInt64.self) } }
            }
            try disk.write(chunk, at: Int64(index) << 20)
        }
    }
    let port = base + pairIndex
    let text = """
        resource r0 {
          net { protocol \(protocolName); connect-int 1; max-buffers 20000; }
          disk { md-flushes no; \(options.diskOptions) }
          device minor 0; meta-disk internal;
          on a { disk \(directory)/a.img; address 127.0.0.1:\(port); }
          on b { disk \(directory)/b.img; address 127.0.0.2:\(port); }
        }
        """
    let configuration = try ConfigBuilder.load(text: text, file: directory + "/r.res")
    let a = try ReplicatedVolume(configuration: configuration, resource: "r0", node: "a", transport: try TCPTransport.forResource(configuration, "r0", node: "a"))
    let b = try ReplicatedVolume(configuration: configuration, resource: "r0", node: "b", transport: try TCPTransport.forResource(configuration, "r0", node: "b"))
    try a.up()
    try b.up()
    guard a.waitForConnection(timeout: 30) else { throw TransportError("no connection") }
    return (a, b, directory)
}

func seconds(_ start: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }

/// Writes `totalBytes` in requests of `size` with `depth` requests in flight; returns MB/s and latencies.
func replicatedWrites(_ volume: ReplicatedVolume, size: Int, depth: Int, totalBytes: Int) -> (Double, [Double]) {
    let slots = DispatchSemaphore(value: depth)
    let group = DispatchGroup()
    let lock = NSLock()
    nonisolated(unsafe) var latencies: [Double] = []
    let data = [UInt8](repeating: 0x5A, count: size)
    let span = Int64(volume.size) / Int64(size) - 1
    let count = totalBytes / size
    let start = DispatchTime.now()
    for index in 0..<count {
        slots.wait()
        group.enter()
        let began = DispatchTime.now()
        volume.runtime.submit(.write(offset: (Int64(index) * 7 % span) * Int64(size), data: data)) { _ in
            let latency = seconds(began)
            lock.withLock { latencies.append(latency) }
            slots.signal()
            group.leave()
        }
    }
    group.wait()
    let elapsed = seconds(start)
    return (Double(totalBytes) / elapsed / 1e6, latencies.sorted())
}

func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }

do {
    // Full sync of existing data.
    if options.only == nil || options.only == "sync" {
    let (a, b, directory) = try makePair(protocolName: "C", diskMiB: options.syncMiB, fill: true)
    let promoted = DispatchTime.now()
    try a.promote(force: true)
    guard a.runtime.wait(timeout: 30, until: { $0.state.connection == .syncSource }) else { throw TransportError("no full sync after primary --force") }
    let start = DispatchTime.now()
    guard a.runtime.wait(timeout: 3600, until: { $0.state.connection == .connected && $0.state.peerDisk == .upToDate }) else { throw TransportError("sync did not finish") }
    let syncRate = Double(options.syncMiB << 20) / seconds(start) / 1e6
    let overallRate = Double(options.syncMiB << 20) / seconds(promoted) / 1e6
    print("full_sync_\(options.syncMiB)MiB \(String(format: "%.1f", syncRate)) MB/s from_primary_force \(String(format: "%.1f", overallRate)) MB/s")
    a.down(); b.down()
    try? FileManager.default.removeItem(atPath: directory)
    }

    // Resync after an outage: the Secondary disconnected, half the disk written in 1 MiB
    // blocks at random distinct offsets, the Secondary reconnected. Throughput is timed from
    // the start of the resync (SyncSource) to its end; connection setup is not part of it.
    if options.only == nil || options.only == "outage" {
        let (primary, secondary, dir) = try makePair(protocolName: "C", diskMiB: options.syncMiB, fill: false)
        try primary.runtime.admin { $0.newCurrentUUIDAfterConnect() }.get()
        // The peer adopts the new generation when its UUIDs arrive: wait for it there.
        guard secondary.waitForSync(timeout: 10) else { throw TransportError("skip of the initial sync not taken by the peer") }
        try primary.promote()
        try secondary.runtime.disconnect()
        _ = primary.runtime.wait(timeout: 10) { $0.state.connection < .connected }
        var slots = Array(0..<(Int(primary.size) >> 20))
        var generator = SystemRandomNumberGenerator()
        slots.shuffle(using: &generator)
        var block = [UInt8](repeating: 0, count: 1 << 20)
        for slot in slots.prefix(slots.count / 2) {
            block.withUnsafeMutableBytes { raw in for i in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: UInt64(slot &* 31 &+ i), toByteOffset: i, as: UInt64.self) } }
            try primary.write(block, at: Int64(slot) << 20)
        }
        let dirtied = primary.runtime.snapshot.outOfSyncBits * 4096
        let before = primary.runtime.snapshot.counters.resyncBytes
        try secondary.runtime.connect()
        guard primary.runtime.wait(timeout: 30, until: { $0.state.connection == .syncSource }) else { throw TransportError("no resync after reconnect") }
        let start = DispatchTime.now()
        guard primary.runtime.wait(timeout: 600, until: { $0.state.connection == .connected && $0.state.peerDisk == .upToDate }) else { throw TransportError("resync did not finish") }
        let elapsed = seconds(start)
        let resent = primary.runtime.snapshot.counters.resyncBytes - before
        print("resync_after_outage \(String(format: "%.1f", Double(resent) / elapsed / 1e6)) MB/s dirtied \(dirtied) bytes resent \(resent) bytes ratio \(String(format: "%.3f", Double(resent) / Double(dirtied)))")
        primary.down(); secondary.down()
        try? FileManager.default.removeItem(atPath: dir)
    }

    // Resync of scattered blocks on a large disk: a 1 TiB disk (sparse files, only the blocks
    // written take memory), the Secondary disconnected, 4 KiB written in distinct 4 MiB
    // extents at random, the Secondary reconnected. What it measures is the per-block work of
    // the resync on a 32 MiB bitmap, timed from SyncSource to the end.
    if options.only == nil || options.only == "scattered" {
        let (primary, secondary, dir) = try makePair(protocolName: "C", diskMiB: 1 << 20, fill: false, writeEveryBlock: false)
        try primary.runtime.admin { $0.newCurrentUUIDAfterConnect() }.get()
        guard secondary.waitForSync(timeout: 10) else { throw TransportError("skip of the initial sync not taken by the peer") }
        try primary.promote()
        try secondary.runtime.disconnect()
        _ = primary.runtime.wait(timeout: 10) { $0.state.connection < .connected }
        let extents = Int64(primary.size) >> 22
        var generator = SystemRandomNumberGenerator()
        var chosen = Set<Int64>()
        while chosen.count < options.scatteredBlocks { chosen.insert(Int64.random(in: 0..<extents, using: &generator)) }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        for extent in chosen { try primary.write(block, at: extent << 22) }
        let dirtied = primary.runtime.snapshot.outOfSyncBits * 4096
        try secondary.runtime.connect()
        guard primary.runtime.wait(timeout: 30, until: { $0.state.connection == .syncSource }) else { throw TransportError("no resync after reconnect") }
        let start = DispatchTime.now()
        guard primary.runtime.wait(timeout: 600, until: { $0.state.connection == .connected && $0.state.peerDisk == .upToDate }) else { throw TransportError("resync did not finish") }
        let elapsed = seconds(start)
        print("resync_scattered_4KiB_1TiB \(String(format: "%.1f", Double(dirtied) / elapsed / 1e6)) MB/s blocks \(options.scatteredBlocks) seconds \(String(format: "%.3f", elapsed))")
        primary.down(); secondary.down()
        try? FileManager.default.removeItem(atPath: dir)
    }

    for (size, label) in [(1 << 20, "1MiB"), (4096, "4KiB")] where options.writeSize == nil || options.writeSize == size {
        for depth in [1, 8, 32] where (options.only == nil || options.only == "writes") && (options.depth == nil || options.depth == depth) {
            let (primary, secondary, dir) = try makePair(protocolName: "C", diskMiB: 512, fill: false)
            try primary.runtime.admin { $0.newCurrentUUIDAfterConnect() }.get()
            _ = primary.waitForSync(timeout: 10)
            try primary.promote()
            let total = size == 4096 ? min(options.writeMiB, 32) << 20 : options.writeMiB << 20
            let (rate, latencies) = replicatedWrites(primary, size: size, depth: depth, totalBytes: total)
            print("protocol_C_\(label)_qd\(depth) \(String(format: "%.1f", rate)) MB/s p50 \(String(format: "%.1f", percentile(latencies, 0.5) * 1e6)) us p99 \(String(format: "%.1f", percentile(latencies, 0.99) * 1e6)) us")
            primary.down(); secondary.down()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
} catch {
    FileHandle.standardError.write(Data("replication-bench: \(error)\n".utf8))
    exit(1)
}

extension VolumeEngine {
    /// Both disks blank: skip the initial sync (new-current-uuid --clear-bitmap).
    mutating func newCurrentUUIDAfterConnect() -> Result<[EngineEffect], StateChangeError> { newCurrentUUID(clearBitmap: true) }
}
