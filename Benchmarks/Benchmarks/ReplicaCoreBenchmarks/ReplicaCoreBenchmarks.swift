import Benchmark
import ReplicaCore

/// Micro-benchmarks of the meta-data hot paths: CRC32C (AL transactions), bitmap updates
/// and scans (every write and every resync request), AL transaction encode/decode.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(3), maxIterations: 100_000)

    let megabyte = [UInt8](repeating: 0xA5, count: 1 << 20)
    let mebibytesPerSecond = BenchmarkMetric.custom("MiB/s", polarity: .prefersLarger, useScalingFactor: false)

    /// Checksums 1 MiB per iteration with `checksum` and reports MiB/s.
    func crcBenchmark(_ name: String, _ checksum: @escaping @Sendable (UInt32, UnsafeRawBufferPointer) -> UInt32) {
        Benchmark(name, configuration: .init(metrics: [.wallClock, .throughput, mebibytesPerSecond])) { benchmark in
            var crc: UInt32 = 0
            let start = ContinuousClock.now
            for _ in benchmark.scaledIterations {
                crc = megabyte.withUnsafeBytes { checksum(crc, $0) }
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(mebibytesPerSecond, Int(Double(benchmark.scaledIterations.count) / seconds))
            blackHole(crc)
        }
    }
    crcBenchmark("CRC32C 1 MiB (dispatch: hardware where available)", CRC32C.update)
    crcBenchmark("CRC32C 1 MiB (software table)", CRC32C.software)

    Benchmark("Bitmap mark 4 KiB write out of sync", configuration: .init(scalingFactor: .mega)) { benchmark in
        var bitmap = Bitmap(bitCount: 1 << 24)  // 64 GiB of data
        var offset: Int64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            bitmap.markOutOfSync(offset: offset, length: 4096)
            offset = (offset &+ 7_340_032) & ((1 << 36) - 1)
        }
        blackHole(bitmap.setCount)
    }

    Benchmark("Bitmap set+clear 1 MiB runs", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var bitmap = Bitmap(bitCount: 1 << 24)
        var bit: Int64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            bitmap.set(bit..<(bit + 256))
            bitmap.clear(bit..<(bit + 256))
            bit = (bit + 9973) % ((1 << 24) - 256)
        }
        blackHole(bitmap.setCount)
    }

    Benchmark("Bitmap scan for resync runs (64 GiB, 1% dirty)") { benchmark in
        var bitmap = Bitmap(bitCount: 1 << 24)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<(1 << 24) / 100 {
            let bit = Int64.random(in: 0..<(1 << 24), using: &generator)
            bitmap.set(bit..<(bit + 1))
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(bitmap.runs(maxBits: 256).count)
        }
    }

    Benchmark("Bitmap scan for resync runs (64 GiB, all dirty: a full sync)") { benchmark in
        var bitmap = Bitmap(bitCount: 1 << 24)
        bitmap.setAll()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(bitmap.runs(maxBits: 256).count)
        }
    }

    Benchmark("AL transaction encode (4 KiB + CRC32C)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var log = ActivityLog(slotCount: 1237)
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let extent = UInt32(iteration % 100_000)
            _ = log.activate(extent...extent)
            blackHole(log.makeTransaction().encoded())
            log.release(extent...extent)
        }
    }

    Benchmark("AL transaction decode and verify", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let block = ActivityLogTransaction(number: 7, contextSize: 1237, contextStartSlot: 0,
                                           updates: (0..<64).map { (UInt16($0), UInt32($0 * 3)) },
                                           context: (0..<919).map { UInt32($0) }).encoded()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try ActivityLogTransaction(bytes: block))
        }
    }
}
