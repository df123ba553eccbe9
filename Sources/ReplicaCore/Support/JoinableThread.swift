#if canImport(Glibc)
import Glibc
#endif
import CReplicaLinux
import Foundation

/// A dedicated thread for blocking work (a socket's receive loop, a channel's sender) that
/// its owners can wait for: ``join()`` returns once the body has returned, so whoever stops a
/// link or a server knows its threads are gone (no thread outlives a `down`). Any number of
/// threads may join it, any number of times; the system's thread is joined exactly once.
public final class JoinableThread: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var thread: pthread_t?
    private var joined = false
    private var ended = false
    private let name: String
    /// Dropped once run: what it captured (often the thread's owner) is not kept alive by a
    /// finished thread.
    private var body: (@Sendable () -> Void)?

    private init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }

    /// Starts `body` on a new thread named `name` (15 characters are kept); nil when the
    /// system refuses a thread (the caller reports it).
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> JoinableThread? {
        let owner = JoinableThread(name: name, body: body)
        let retained = Unmanaged.passRetained(owner)
        var handle = pthread_t()
        // The handle is stored before the thread may be joined: the lock is held across the
        // creation.
        owner.condition.lock()
        let rc = pthread_create(&handle, nil, { raw in
            let owner = Unmanaged<JoinableThread>.fromOpaque(raw!).takeRetainedValue()
            CReplicaLinux_set_thread_name(owner.name)
            let body = owner.condition.withLock { () -> (@Sendable () -> Void)? in
                defer { owner.body = nil }
                return owner.body
            }
            body?()
            owner.condition.withLock { owner.ended = true }
            return nil
        }, retained.toOpaque())
        guard rc == 0 else {
            owner.condition.unlock()
            retained.release()
            return nil
        }
        owner.thread = handle
        owner.condition.unlock()
        return owner
    }

    /// True once the body has returned (``join()`` then returns at once).
    public var hasEnded: Bool { condition.withLock { ended } }

    /// Waits until the body has returned (at once if it already has). Never from the thread
    /// itself (it returns at once there).
    public func join() {
        condition.lock()
        if let thread, thread != pthread_self() {
            self.thread = nil
            condition.unlock()
            pthread_join(thread, nil)
            condition.withLock {
                joined = true
                condition.broadcast()
            }
            return
        }
        if let thread, thread == pthread_self() {
            condition.unlock()
            return
        }
        // Another thread is joining it: wait for that.
        while !joined { condition.wait() }
        condition.unlock()
    }
}
