#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One owner for one file descriptor (a socket, a pipe end): every use of the number runs
/// inside ``use(_:)``, while the owner keeps it open. ``close()`` shuts a socket down at once
/// (a `recv`, `send`, `accept` or `poll` blocked on it returns) and the number is given back
/// to the system only when the last use has returned — so it can never be reused for another
/// file while a call on the old one is still running, whatever the threads do.
public final class OwnedDescriptor: Sendable {
    /// Users × 2, plus 1 once closed.
    private let state = Atomic<Int>(0)
    private let descriptor: Int32

    /// Takes ownership of `descriptor` (it is closed by this object only).
    public init(_ descriptor: Int32) { self.descriptor = descriptor }

    deinit {
        // Every use holds the object, so none runs now; closed once in any case.
        if state.load(ordering: .acquiring) & 1 == 0 { Glibc.close(descriptor) }
    }

    /// True once ``close()`` was called.
    public var isClosed: Bool { state.load(ordering: .acquiring) & 1 != 0 }

    /// Runs `body` with the descriptor, held open meanwhile; nil, without running it, once closed.
    @inlinable
    public func use<Value, Failure: Error>(_ body: (Int32) throws(Failure) -> Value) throws(Failure) -> Value? {
        guard enter() else { return nil }
        defer { leave() }
        return try body(rawDescriptor)
    }

    /// The number, for ``use(_:)`` only.
    @usableFromInline var rawDescriptor: Int32 { descriptor }

    @usableFromInline func enter() -> Bool {
        var current = state.load(ordering: .relaxed)
        while current & 1 == 0 {
            let (exchanged, original) = state.compareExchange(expected: current, desired: current + 2, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    @usableFromInline func leave() {
        // The last user after a close gives the number back.
        if state.subtract(2, ordering: .acquiringAndReleasing).newValue == 1 { Glibc.close(descriptor) }
    }

    /// Closes: a socket is shut down in both directions now (waking whatever waits on it), and
    /// the descriptor closed once no use is running. Idempotent.
    public func close() {
        guard enter() else { return }
        let previous = state.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue
        if previous & 1 == 0 { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
        leave()
    }

    /// Shuts down the sending direction of a socket (FIN after what was sent); reading goes on.
    public func shutdownSending() {
        _ = use { shutdown($0, Int32(SHUT_WR)) }
    }
}
