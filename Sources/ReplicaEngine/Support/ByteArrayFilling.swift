extension Array where Element == UInt8 {
    /// An array of `count` bytes written by `fill`, which must fill the whole buffer it is
    /// given or throw (the array is not zeroed first: a read or `recv` into it is the only
    /// pass over its memory).
    /// - Throws: what `fill` throws; no array is made then.
    @inlinable
    public init<Failure: Error>(filling count: Int, by fill: (UnsafeMutableRawBufferPointer) throws(Failure) -> Void) throws(Failure) {
        var failure: Failure?
        self.init(unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(Failure) {
                try fill(UnsafeMutableRawBufferPointer(buffer))
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
    }
}
