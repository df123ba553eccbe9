/// What an ``NBDServer`` serves: one export, which may be refused for now (a Secondary).
public protocol NBDExportSource: Sendable {
    /// The export's name (`NBD_OPT_LIST`, `INFO_NAME`); the empty name selects it too.
    var name: String { get }
    /// A human-readable description (`INFO_DESCRIPTION`, `LIST`).
    var description: String { get }
    /// The backend for a client, or why it is refused (sent as `NBD_REP_ERR_POLICY`).
    func open() -> Result<any NBDBackend, NBDRefusal>
}

/// Why an export cannot be opened now.
public struct NBDRefusal: Error, Equatable, Sendable {
    /// The message the client gets.
    public var message: String
    /// A refusal with `message`.
    public init(_ message: String) { self.message = message }
}

/// An export over a fixed backend, always available (tests, standalone serving).
public struct FixedExport: NBDExportSource {
    public let name: String
    public let description: String
    private let backend: any NBDBackend

    /// An export named `name` of `backend`.
    public init(name: String, description: String = "", backend: any NBDBackend) {
        self.name = name
        self.description = description
        self.backend = backend
    }

    public func open() -> Result<any NBDBackend, NBDRefusal> { .success(backend) }
}
