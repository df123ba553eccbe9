#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Open file limit")
struct OpenFileLimitTests {
    @Test func theSoftLimitIsRaisedToTheHardOne() throws {
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        try #require(getrlimit(resource, &limit) == 0)
        // What the function reaches: the hard limit, or 2^20 when the hard limit is unlimited.
        let ceiling = limit.rlim_max == rlim_t.max ? rlim_t(1 << 20) : limit.rlim_max
        try #require(ceiling > 1024, "hard limit \(limit.rlim_max): too low to test")
        // A soft limit below the hard one, so that the test fails if nothing raises it (one
        // descriptor less than the ceiling: the tests running alongside are not short of any).
        if limit.rlim_cur >= ceiling {
            var lowered = limit
            lowered.rlim_cur = ceiling - 1
            try #require(setrlimit(resource, &lowered) == 0)
        }
        let raised = OpenFileLimit.raiseToHardLimit()
        var after = rlimit()
        try #require(getrlimit(resource, &after) == 0)
        #expect(raised == UInt64(after.rlim_cur))
        #expect(after.rlim_cur == ceiling, "soft \(after.rlim_cur), hard \(after.rlim_max)")
    }
}
