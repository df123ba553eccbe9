extension UInt64 {
    /// Sixteen upper-case hex digits, as drbdmeta prints UUIDs.
    package var hex16: String {
        let digits = String(self, radix: 16, uppercase: true)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
