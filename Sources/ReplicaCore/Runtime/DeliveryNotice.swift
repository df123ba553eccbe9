/// Runs once after each engine step that completed any of the requests submitted with it.
public final class DeliveryNotice: Sendable {
    let notify: @Sendable () -> Void

    /// A notice that calls `notify`.
    public init(_ notify: @escaping @Sendable () -> Void) { self.notify = notify }
}
