/// A frame from a peer that breaks the wire protocol. It ends that connection (the state
/// goes ProtocolError, then Unconnected) and never the process.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, with the offending values.
    public var description: String

    /// Creates an error.
    public init(_ description: String) { self.description = description }
}
