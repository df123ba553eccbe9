import CReplicaLinux

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as DRBD's activity log uses it:
/// initial value 0 and no final XOR (Linux `crc32c(0, buf, len)`).
///
/// Uses the CPU's crc32 instruction (SSE4.2 on x86-64, ARMv8 CRC) through the C shim where
/// available, and a slicing-by-8 table otherwise.
public enum CRC32C {
    /// True when the hardware instruction is used.
    public static let hardwareAccelerated: Bool = CReplicaLinux_crc32c_hardware_available() == 1

    private static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var crc = UInt32(i)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[0][i] = crc
        }
        for i in 0..<256 {
            for t in 1..<8 { tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][Int(tables[t - 1][i] & 0xFF)] }
        }
        return tables
    }()

    /// Updates `crc` with `buffer` (raw register update, no inversion).
    public static func update(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return crc }
        if hardwareAccelerated { return CReplicaLinux_crc32c_hardware(crc, base, buffer.count) }
        return software(crc, buffer)
    }

    /// The table-driven implementation (used when the CPU has no crc32 instruction, and in tests).
    public static func software(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        var crc = crc
        var index = 0
        let count = buffer.count
        tables.withUnsafeBufferPointer { t in
            let t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7]
            while count - index >= 8 {
                let low = crc ^ (UInt32(buffer[index]) | UInt32(buffer[index + 1]) << 8 | UInt32(buffer[index + 2]) << 16 | UInt32(buffer[index + 3]) << 24)
                let high = UInt32(buffer[index + 4]) | UInt32(buffer[index + 5]) << 8 | UInt32(buffer[index + 6]) << 16 | UInt32(buffer[index + 7]) << 24
                crc = t7[Int(low & 0xFF)] ^ t6[Int((low >> 8) & 0xFF)] ^ t5[Int((low >> 16) & 0xFF)] ^ t4[Int(low >> 24)]
                    ^ t3[Int(high & 0xFF)] ^ t2[Int((high >> 8) & 0xFF)] ^ t1[Int((high >> 16) & 0xFF)] ^ t0[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = (crc >> 8) ^ t0[Int((crc ^ UInt32(buffer[index])) & 0xFF)]
                index += 1
            }
        }
        return crc
    }

    /// DRBD's checksum of a buffer: `crc32c(0, buffer)`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    /// The standard CRC-32C (initial ~0, final XOR ~0) as iSCSI and ext4 use it; check value
    /// of "123456789" is 0xE3069283.
    public static func standard(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { ~update(0xFFFF_FFFF, $0) }
    }
}
