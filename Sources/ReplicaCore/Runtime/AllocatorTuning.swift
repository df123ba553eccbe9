import CReplicaLinux

/// glibc malloc settings that keep replication's data buffers (up to 1 MiB each, allocated
/// and freed for every frame and every disk read) in memory that is reused, instead of
/// memory that is mapped, faulted in and zeroed page by page for every buffer.
///
/// glibc serves allocations above its mmap threshold with a fresh `mmap` and unmaps them on
/// `free`; and a per-thread arena whose heap empties is unmapped whole. Buffers here are
/// allocated on one thread (a receive thread, an I/O thread) and freed on another, so both
/// happen all the time. Measured on this project's benchmark (docs/PERFORMANCE.md): a full
/// sync over loopback about 25 % faster with the thresholds, about 15 % more with one arena.
public enum AllocatorTuning {
    /// Raises the mmap threshold to 4 MiB and the trim threshold to 64 MiB (the most a node
    /// keeps in flight is the resync window plus the application's writes), once per
    /// process. Every ``ReplicationRuntime`` applies it when created.
    public static func keepDataBuffersInHeap() { _ = thresholdsApplied }

    /// Limits malloc to one arena, so that buffers freed on another thread go back to the
    /// heap they came from, which then never empties and is never unmapped. Call it first
    /// thing in `main`, before threads allocate (arenas that exist are kept). The node daemon
    /// does; an embedding program decides for itself, as it affects the whole process.
    public static func useSingleArena() { _ = singleArenaApplied }

    private static let thresholdsApplied: Bool = CReplicaLinux_set_malloc_thresholds(4 << 20, 64 << 20) == 1
    private static let singleArenaApplied: Bool = CReplicaLinux_set_malloc_arena_max(1) == 1
}
