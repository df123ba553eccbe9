/// Appends big-endian integers and fixed-size strings to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    /// A writer that appends to `bytes`, which it takes (left empty; swap it back after).
    init(adopting bytes: inout [UInt8]) { swap(&self.bytes, &bytes) }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        // As typed bytes: the array copies them in one move (a raw buffer went byte by byte).
        withUnsafeBytes(of: value.bigEndian) { raw in raw.withMemoryRebound(to: UInt8.self) { bytes.append(contentsOf: $0) } }
    }

    /// A NUL-padded string field of `size` bytes (the string must be shorter).
    mutating func putString(_ text: String, size: Int) {
        let utf8 = Array(text.utf8.prefix(size - 1))
        bytes += utf8
        bytes += [UInt8](repeating: 0, count: size - utf8.count)
    }
}

/// Reads big-endian integers from a byte array, with bounds checked by the caller's size rules.
struct ByteReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func get<T: FixedWidthInteger>(_: T.Type) -> T {
        var value: T = 0
        for _ in 0..<MemoryLayout<T>.size {
            value = value << 8 | T(bytes[position])
            position += 1
        }
        return value
    }

    /// A NUL-padded string field; refuses bytes after the terminator or invalid UTF-8.
    mutating func getString(size: Int, field: String) throws(ProtocolError) -> String {
        let raw = bytes[position..<(position + size)]
        position += size
        guard let end = raw.firstIndex(of: 0) else { throw ProtocolError("\(field): string is not NUL-terminated") }
        guard raw[end...].allSatisfy({ $0 == 0 }) else { throw ProtocolError("\(field): bytes after the NUL terminator") }
        guard let text = String(validating: raw[..<end], as: UTF8.self) else { throw ProtocolError("\(field): not UTF-8") }
        return text
    }

    var remaining: [UInt8] { Array(bytes[position...]) }
}
