@testable import ReplicaCore
@testable import ReplicaEngine

/// `length` bytes of a seeded pseudo-random pattern (a multiple of 8 bytes is filled word by
/// word; the same seed gives the same bytes), for data compared byte for byte.
func pattern(_ length: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8](repeating: 0, count: length)
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for index in words.indices { words[index] = generator.next() }
    }
    return bytes
}
