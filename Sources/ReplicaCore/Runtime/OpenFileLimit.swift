#if canImport(Glibc)
import Glibc
#endif

/// The process's limit of open descriptors. Besides its sockets and disks, a node holds data
/// in pipes (``SplicedRead``, ``SplicedReceive``: two descriptors each, up to a few hundred at
/// once), so the usual soft limit of 1 024 can run short with several resources — a pipe that
/// cannot be made only sends the data through memory, but an `accept` or `open` that fails
/// would refuse a peer or a disk.
public enum OpenFileLimit {
    /// Raises the soft limit to the hard one (as far as the system allows) and returns the
    /// soft limit in force afterwards. The node daemon calls it at start; an embedding program
    /// decides for itself.
    @discardableResult
    public static func raiseToHardLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        // An unlimited hard limit is more than the kernel takes (fs.nr_open, 1 048 576 by
        // default): then that much.
        for target in [limit.rlim_max, min(limit.rlim_max, 1 << 20)] where limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                limit = raised
                break
            }
        }
        return UInt64(limit.rlim_cur)
    }
}
